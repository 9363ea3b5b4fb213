{#-
  Tables with an enforced contract, keyed after they are filled.

  dbt-postgres creates such a table with its primary key and unique constraints and then inserts,
  so every key's index grows row by row: at 36 months of ten areas fct_treatment_person_months
  took 13.0 s to build that way, 5.3 s keyed after (bench/RESULTS.md §2). Here the table is created with its
  columns, types and not-null constraints, filled, and then keyed with `alter table ... add`,
  which builds each index in one sort (post-hook `add_contract_keys`, dbt_project.yml; a hook, so
  the build still reports the rows the insert wrote). Foreign keys come last, after the table's
  statistics (hook `add_contract_foreign_keys`), each validated in one query instead of a lookup per
  inserted row. A duplicate or an orphan key still fails the model's build. Otherwise dbt-postgres
  1.11's postgres__create_table_as.
-#}

{% macro postgres__create_table_as(temporary, relation, sql) -%}
  {%- set unlogged = config.get('unlogged', default=false) -%}
  {%- set sql_header = config.get('sql_header', none) -%}
  {%- set contract_config = config.get('contract') -%}
  {%- set keyed_after = is_keyed_after_load() and not temporary -%}

  {{ sql_header if sql_header is not none }}

  create {% if temporary -%}
    temporary
  {%- elif unlogged -%}
    unlogged
  {%- endif %} table {{ relation }}
  {% if contract_config.enforced %}
    {{ get_assert_columns_equivalent(sql) }}
  {% endif -%}
  {% if contract_config.enforced and (not temporary) -%}
      {{ columns_and_constraints_without_keys() if keyed_after else get_table_columns_and_constraints() }} ;
    insert into {{ relation }} (
      {{ adapter.dispatch('get_column_names', 'dbt')() }}
    )
    {%- set sql = get_select_subquery(sql) %}
  {% else %}
    as
  {% endif %}
  (
    {{ sql }}
  );
{%- endmacro %}


{#- Table models with an enforced contract; an incremental model keeps dbt's keys at creation (it is built once). -#}
{% macro is_keyed_after_load() -%}
  {{ return(config.get('contract').enforced and config.get('materialized') == 'table') }}
{%- endmacro %}


{#- The constraint types that are keys, and their SQL. -#}
{% macro key_constraint_kinds() -%}
  {{ return({'primary_key': 'primary key', 'unique': 'unique', 'foreign_key': 'foreign key'}) }}
{%- endmacro %}


{#- Post-hook: the contract's primary and unique keys (nothing for a model without an enforced contract).
    An incremental table stays the table its first build created, so its not-null constraints are
    set again after every build: a no-op once they hold, and a table built before its contract had
    them gains them (one scan). -#}
{% macro add_contract_keys() -%}
  {%- if config.get('contract').enforced and config.get('materialized') == 'incremental' -%}
    {%- set not_null = [] -%}
    {%- for name, column in model['columns'].items() if column['constraints'] | selectattr('type', 'eq', 'not_null') | list -%}
      {%- do not_null.append('alter column ' ~ (adapter.quote(name) if column.get('quote') else name) ~ ' set not null') -%}
    {%- endfor -%}
    {%- if not_null %}alter table {{ this }} {{ not_null | join(', ') }};{% endif -%}
  {%- elif is_keyed_after_load() -%}
    {% for key in contract_keys() if not key.is_foreign -%}
      alter table {{ this }} add {{ key.kind }} ({{ key.columns | join(', ') }});
    {% endfor -%}
  {%- endif -%}
{%- endmacro %}


{#- The last post-hook: the contract's foreign keys. Adding one locks the table it points at against
    other models adding theirs until this model commits, so nothing follows it (bench/RESULTS.md §2).
    In the order of the tables they point at: two models adding at once in another order would deadlock. -#}
{% macro add_contract_foreign_keys() -%}
  {%- if is_keyed_after_load() -%}
    {% for key in contract_keys() | selectattr('is_foreign') | sort(attribute='to') -%}
      alter table {{ this }} add foreign key ({{ key.columns | join(', ') }})
        references {{ key.to }} ({{ key.to_columns | join(', ') }});
    {% endfor -%}
  {%- endif -%}
{%- endmacro %}


{#- The contract's columns and constraints as dbt renders them, less the keys. A column's named check
    is rendered as a table constraint: dbt-postgres drops the name of a column-level check, and the
    name is what a failed insert reports (`violates check constraint "kpi_code_is_known"`). -#}
{% macro columns_and_constraints_without_keys() -%}
  {%- set keys = key_constraint_kinds().keys() | list -%}
  {%- set columns = {} -%}
  {%- set named_checks = [] -%}
  {%- for name, column in model['columns'].items() -%}
    {%- set kept = column.copy() -%}
    {%- set constraints = column['constraints'] | rejectattr('type', 'in', keys) | list -%}
    {%- for constraint in constraints if constraint['type'] == 'check' and constraint['name'] -%}
      {%- do named_checks.append(constraint) -%}
    {%- endfor -%}
    {%- do kept.update({'constraints': constraints | reject('in', named_checks) | list}) -%}
    {%- do columns.update({name: kept}) -%}
  {%- endfor -%}
  {%- set column_ddl = adapter.render_raw_columns_constraints(raw_columns=columns) -%}
  {%- set model_ddl = adapter.render_raw_model_constraints(
      raw_constraints=(model['constraints'] | rejectattr('type', 'in', keys) | list) + named_checks) -%}
  (
  {% for c in column_ddl -%}
    {{ c }}{{ "," if not loop.last or model_ddl }}
  {% endfor %}
  {% for c in model_ddl -%}
    {{ c }}{{ "," if not loop.last }}
  {% endfor -%}
  )
{%- endmacro %}


{#- Primary key, unique and foreign key constraints of the contract, column-level and model-level:
    [{kind, columns, is_foreign, to, to_columns}] (`to` as dbt compiled it: the referenced relation). -#}
{% macro contract_keys() -%}
  {%- set kinds = key_constraint_kinds() -%}
  {%- set keys = [] -%}
  {%- for name, column in model['columns'].items() -%}
    {%- for constraint in column['constraints'] if constraint['type'] in kinds -%}
      {%- do keys.append(contract_key(constraint, [adapter.quote(name) if column.get('quote') else name])) -%}
    {%- endfor -%}
  {%- endfor -%}
  {%- for constraint in model['constraints'] if constraint['type'] in kinds -%}
    {%- do keys.append(contract_key(constraint, constraint['columns'])) -%}
  {%- endfor -%}
  {{ return(keys) }}
{%- endmacro %}


{% macro contract_key(constraint, columns) -%}
  {{ return({
      'kind': key_constraint_kinds()[constraint['type']],
      'columns': columns,
      'is_foreign': constraint['type'] == 'foreign_key',
      'to': constraint.get('to') or '',
      'to_columns': constraint.get('to_columns') or [],
  }) }}
{%- endmacro %}
