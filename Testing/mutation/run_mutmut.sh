#!/bin/sh
# Mutation testing of the safety-critical code, one module at a time (see run_mutmut.py).
#   Testing/mutation/run_mutmut.sh physics/decay.py [--workers 2]
#   Testing/mutation/run_mutmut.sh all
cd "$(dirname "$0")/../.." && exec python Testing/mutation/run_mutmut.py "$@"
