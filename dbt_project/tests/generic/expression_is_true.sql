{#- Every row satisfies a boolean SQL expression (dbt_utils is not installed); filter with config `where`. -#}
{% test expression_is_true(model, expression) %}
    select *
    from {{ model }}
    where not coalesce(({{ expression }}), false)
{% endtest %}
