#!/bin/sh
# mk/deps.sh PURPOSE... — the one install rule: installs the Debian packages listed in
# mk/packages/PURPOSE.txt (one a line, # starts a comment, a trailing ? marks a package the
# purpose can do without) when some are missing. As root it runs apt-get; otherwise it names
# the command to run and fails (an optional package missing only warns).
set -eu
dir=$(dirname "$0")/packages
need="" optional=""
add() { case " $1 " in *" $2 "*) echo "$1" ;; *) echo "$1 $2" ;; esac; }
for purpose in "$@"; do
  list="$dir/$purpose.txt"
  [ -f "$list" ] || { echo "deps: no package list $list" >&2; exit 2; }
  for p in $(sed 's/#.*//' "$list"); do
    case "$p" in
      *\?) optional=$(add "$optional" "${p%\?}") ;;
      *) need=$(add "$need" "$p") ;;
    esac
  done
done

installed() { dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q '^install ok installed'; }
missing="" missing_optional=""
for p in $need; do installed "$p" || missing="$missing $p"; done
for p in $optional; do installed "$p" || missing_optional="$missing_optional $p"; done

what="deps ($*)"
if [ -z "$missing$missing_optional" ]; then
  echo "$what: all Debian packages present"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  [ -n "$missing_optional" ] && echo "$what: optional, not installed:$missing_optional"
  [ -z "$missing" ] && exit 0
  echo "$what: missing packages; run as root:"
  echo "  apt-get install -y$missing"
  exit 1
fi
apt-get update -qq
if [ -n "$missing" ]; then
  echo "$what: installing$missing"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
fi
for p in $missing_optional; do
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" > /dev/null 2>&1 ||
    echo "$what: optional $p not installed"
done
