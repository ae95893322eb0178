{{ config(materialized='incremental', incremental_strategy='insert_overwrite', format='parquet', partitioned_by=['category']) }}
select id, amount * 2 as amount, category
from {{ ref('seed_events') }}
{% if is_incremental() %}
where category in ('books', 'games')
{% endif %}
