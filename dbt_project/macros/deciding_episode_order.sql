{#-
    Order that picks a person's deciding episode (kpis.md "Substance group of a
    person", decisions 5 and 10): latest referral, then latest first
    intervention, then provider code and episode id, highest first.
-#}
{% macro deciding_episode_order(prefix='') -%}
    {{ prefix }}referral_date desc,
    {{ prefix }}first_intervention_date desc nulls last,
    {{ prefix }}provider_code desc,
    {{ prefix }}episode_id desc
{%- endmacro %}
