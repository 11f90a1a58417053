#!/bin/sh
# Entrypoint of the mom image: a member of a cluster must not start without
# the shared secrets (a generated JWT secret would differ per member, and
# without the cluster secret every peer call is refused), so a missing one
# stops the container with one line naming it. Then it becomes momd.
# SPDX-License-Identifier: MIT
set -eu
if [ -n "${MOM_PEERS:-}" ]; then
    for v in MOM_JWT_SECRET MOM_CLUSTER_SECRET; do
        eval "val=\${$v:-}"
        if [ -z "$val" ]; then
            echo "mom: $v is not set; a cluster member needs it (the demo reads deploy/demo.env)" >&2
            exit 2
        fi
    done
fi
exec /usr/local/bin/momd "$@"
