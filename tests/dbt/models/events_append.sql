{{ config(materialized='incremental', incremental_strategy='append', format='parquet') }}
select id, amount
from {{ ref('seed_events') }}
{% if is_incremental() %}
where id > (select max(id) - 5 from {{ this }})
{% endif %}
