#!/bin/sh
# mk/check-spec-tags.sh BUSTED... — spec/unit/ and spec/integration/ and the `integration`
# tag must agree, since `make unit` and `make luajit` select the unit specs by tag: fails when
# `--exclude-tags=integration` lists a spec outside spec/unit/, or `--tags=integration` one
# outside spec/integration/. BUSTED is the busted command line (the build must exist).
set -eu
files() { "$@" --list 2>&1 | sed -n 's#^\(spec/[^:]*_spec\.lua\):[0-9]*: .*#\1#p' | sort -u; }
stray_unit=$(files "$@" --exclude-tags=integration | grep -v '^spec/unit/' || true)
stray_integration=$(files "$@" --tags=integration | grep -v '^spec/integration/' || true)
status=0
if [ -n "$stray_unit" ]; then
  echo "check-spec-tags: specs without the integration tag outside spec/unit/:"
  echo "$stray_unit" | sed 's/^/  /'
  status=1
fi
if [ -n "$stray_integration" ]; then
  echo "check-spec-tags: specs tagged integration outside spec/integration/:"
  echo "$stray_integration" | sed 's/^/  /'
  status=1
fi
[ $status = 0 ] && echo "check-spec-tags: spec/unit/ is exactly the specs without the integration tag"
exit $status
