#!/bin/sh
# Runs one test: a shell script through sh, anything else directly; under
# valgrind when VALGRIND is set (collectd's testwrapper idea).
case "$1" in
*.sh) exec ${SHELL:-/bin/sh} "$@" ;;
esac
if [ -n "${VALGRIND:-}" ]; then
	exec valgrind --quiet --error-exitcode=1 --leak-check=full "$@"
fi
exec "$@"
