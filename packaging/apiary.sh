#!/bin/sh
# /usr/bin/apiary from the Debian package: the packaged app on the system's
# Node.js. The service and a person at the shell find the same config: a
# first-boot file on the boot partition, else /etc/apiary/apiary.yaml
# (unless --config is given or ./apiary.yaml exists), and data in
# /var/lib/apiary unless the config says otherwise (runtime/config/config-search.ts).
export APIARY_CONFIG_PATH="${APIARY_CONFIG_PATH-/boot/firmware/apiary.yaml:/etc/apiary/apiary.yaml}"
export APIARY_DATA_DIR="${APIARY_DATA_DIR-/var/lib/apiary}"
# The launcher picks the runtime release to run: the packaged one, or one installed by
# `apiary update install` (runtime/extensions/runtime-updates/launcher.ts).
exec /usr/bin/node /usr/lib/apiary/dist/launcher.mjs "$@"
