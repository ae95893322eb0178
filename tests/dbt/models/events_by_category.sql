{{ config(materialized='table', format='parquet', partitioned_by=['category']) }}
select id, amount, category
from {{ ref('seed_events') }}
