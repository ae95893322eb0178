{{ config(materialized='view') }}
select category, count(*) as n, sum(amount) as total
from {{ ref('seed_events') }}
group by category
