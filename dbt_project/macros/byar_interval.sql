{#-
    Byar's approximation to the exact Poisson 95% interval of a count x (kpis.md decision 20;
    the method PHE/OHID use for counts and crude rates):
      lower = x (1 - 1/(9x) - 1.96/(3 sqrt x))^3, 0 when x = 0
      upper = (x+1) (1 - 1/(9(x+1)) + 1.96/(3 sqrt(x+1)))^3
    Unrounded numeric; NULL when x is NULL. The caller rounds as it publishes.
-#}
{% macro byar_lower(count) -%}
    case
        when ({{ count }}) = 0 then 0::numeric
        else ({{ count }})::numeric
            * power(1 - 1 / (9 * ({{ count }})::numeric) - 1.96 / (3 * sqrt(({{ count }})::numeric)), 3)
    end
{%- endmacro %}

{% macro byar_upper(count) -%}
    (({{ count }})::numeric + 1)
        * power(1 - 1 / (9 * (({{ count }})::numeric + 1)) + 1.96 / (3 * sqrt(({{ count }})::numeric + 1)), 3)
{%- endmacro %}
