-- Which code an area code is reported under in each month. A code rolls forward
-- through whole-area successions (exactly one successor) from the month they take
-- effect; a code split between successors stays as reported, since the feed has
-- no finer geography to share it out. lineage_area_code is the code it ends at today.
with recursive areas as (
    select area_code, valid_from from {{ ref('ref_upper_tier_local_authorities') }}
),

episode_area_codes as (
    select distinct area_code from {{ ref('int_treatment__submission_areas') }}
),

all_codes as (
    select area_code, {{ month_of('valid_from') }} as valid_from_month
    from areas
    union
    select episode_area_codes.area_code, null
    from episode_area_codes
    where episode_area_codes.area_code not in (select area_code from areas)
),

whole_successions as (
    select
        old_area_code,
        min(new_area_code) as new_area_code,
        min({{ month_of('effective_date') }}) as effective_month
    from {{ ref('ref_area_successions') }}
    group by old_area_code
    having count(*) = 1
),

code_chain as (
    -- start: each code under itself until its own succession
    select
        all_codes.area_code,
        all_codes.area_code as reporting_area_code,
        coalesce(all_codes.valid_from_month, date '1900-01-01') as from_month,
        coalesce({{ add_months('whole_successions.effective_month', -1) }}, date '9999-12-01') as to_month,
        whole_successions.new_area_code as next_area_code,
        whole_successions.effective_month as next_from_month,
        1 as depth
    from all_codes
    left join whole_successions
        on whole_successions.old_area_code = all_codes.area_code

    union all

    -- then under each successor in turn
    select
        code_chain.area_code,
        successor.area_code,
        code_chain.next_from_month,
        coalesce({{ add_months('whole_successions.effective_month', -1) }}, date '9999-12-01'),
        whole_successions.new_area_code,
        whole_successions.effective_month,
        code_chain.depth + 1
    from code_chain
    inner join all_codes as successor
        on successor.area_code = code_chain.next_area_code
    left join whole_successions
        on whole_successions.old_area_code = successor.area_code
    where code_chain.depth < 10
),

lineages as (
    select distinct on (area_code) area_code, reporting_area_code as lineage_area_code
    from code_chain
    order by area_code, depth desc
)

select
    code_chain.area_code || '@' || to_char(code_chain.from_month, 'YYYY-MM') as reporting_code_id,
    code_chain.area_code,
    code_chain.reporting_area_code,
    lineages.lineage_area_code,
    code_chain.from_month,
    code_chain.to_month
from code_chain
inner join lineages
    on lineages.area_code = code_chain.area_code
where code_chain.from_month <= code_chain.to_month
