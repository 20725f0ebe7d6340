#!/usr/bin/env bash
# MLflow's tracking database on the head node: PostgreSQL on the head's own disk (a team's tracking
# server belongs on PostgreSQL or MySQL, MLflow's docs say; SQLite over NFS with several writers is
# what SQLite's docs warn corrupts a database), with hourly dumps on the shared file system.
# cluster.yaml runs `setup` on the head; `uri` prints what `mlflow server --backend-store-uri` takes.
#
#   setup           install PostgreSQL, create the login user's role (peer authentication over the
#                   local socket: no secret anywhere) and the database "mlflow"; a new database is
#                   restored from the newest dump in BACKUP_DIR (a replaced head picks up where the
#                   last one stopped); installs the hourly `backup` (cron)
#   backup          pg_dump to BACKUP_DIR/mlflow-YYYYmmdd-HHMM.dump (written, then renamed); keeps 48
#   restore FILE    a dump into the database "mlflow" (stop the MLflow server first)
#   uri             the backend-store URI of the local database
#
# BACKUP_DIR: $K400RAY_MLFLOW_BACKUP, default /mnt/k400/mlflow/backup (the EFS).
set -euo pipefail
BACKUP_DIR=${K400RAY_MLFLOW_BACKUP:-/mnt/k400/mlflow/backup}
DB=mlflow
ME=$(id -un)
KEEP=48

psql_admin() { sudo -u postgres psql -tAc "$1"; }

case "${1:-}" in
  setup)
    command -v pg_dump > /dev/null ||
      sudo DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -yq postgresql
    sudo systemctl enable --now postgresql
    psql_admin "SELECT 1 FROM pg_roles WHERE rolname = '$ME'" | grep -q 1 || sudo -u postgres createuser "$ME"
    if ! psql_admin "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1; then
      sudo -u postgres createdb -O "$ME" "$DB"
      newest=$(ls -1t "$BACKUP_DIR"/mlflow-*.dump 2> /dev/null | head -n 1 || true)
      if [ -n "$newest" ]; then
        pg_restore --no-owner --dbname "$DB" "$newest"
        echo "mlflow database restored from $newest"
      fi
    fi
    mkdir -p "$BACKUP_DIR"
    (crontab -l 2> /dev/null | grep -v 'mlflow_postgres.sh backup' || true
     echo "17 * * * * bash $HOME/k400ray/infra/mlflow_postgres.sh backup >> $HOME/mlflow-backup.log 2>&1") | crontab -
    ;;
  backup)
    mkdir -p "$BACKUP_DIR"
    out="$BACKUP_DIR/mlflow-$(date -u +%Y%m%d-%H%M).dump"
    pg_dump --format=custom --dbname "$DB" --file "$out.part"
    mv "$out.part" "$out"
    ls -1t "$BACKUP_DIR"/mlflow-*.dump | tail -n +$((KEEP + 1)) | xargs -r rm --
    ;;
  restore)
    [ -f "${2:-}" ] || { echo "mlflow_postgres.sh restore FILE: no dump at '${2:-}'" >&2; exit 2; }
    pg_restore --clean --if-exists --no-owner --dbname "$DB" "$2"
    ;;
  uri)
    echo "postgresql://$ME@/$DB?host=/var/run/postgresql"
    ;;
  *)
    echo "usage: mlflow_postgres.sh setup | backup | restore FILE | uri" >&2
    exit 2
    ;;
esac
