"""`eval "$(python -m misuse_warehouse.dbt_env)"`: dbt's connection variables for a shell."""

import shlex

from misuse_warehouse import warehouse

if __name__ == "__main__":
    for name, value in warehouse.dbt_env(warehouse.url()).items():
        print(f"export {name}={shlex.quote(value)}")
