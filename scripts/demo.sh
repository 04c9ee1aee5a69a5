#!/bin/sh
# `make demo`: start xluo-server and a local xluo-agent under ./demo with
# built-in defaults (only a shared token is written), print where to look,
# and stop both on Ctrl-C.
set -eu
build=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
bin="$top/$build"
demo="$top/demo"
port=${XLUO_DEMO_PORT:-21002}

mkdir -p "$demo/server/conf" "$demo/agent/conf" "$demo/agent/conf/cron.d"
# Seed 003's demo script: prints one JSON object with the required `type`.
cat > "$demo/agent/conf/cron.d/demo_cron.py" <<'EOT'
#!/usr/bin/env python3
import json

print(json.dumps({"key1": "value1", "key2": "value2", "key3": "value3", "type": "demo"},
                 indent=4))
EOT
chmod +x "$demo/agent/conf/cron.d/demo_cron.py"
if [ ! -f "$demo/token" ]; then
    od -An -N16 -tx1 /dev/urandom | tr -d ' \n' > "$demo/token"
fi
token=$(cat "$demo/token")
cat > "$demo/server/conf/server.yaml" <<EOT
# demo: everything else is the built-in default (xluo-server help-config)
listen: 127.0.0.1:$port
agent_token: $token
api_token: $token
EOT
cat > "$demo/agent/conf/agent.yaml" <<EOT
# demo: everything else is the built-in default (xluo-agent help-config)
servers: [http://127.0.0.1:$port]
token: $token
labels: {env: demo}
inputs:
  tail:
    - name: xluo
      paths: [$demo/*/log/*.log]
      from: head
  exec:
    - dir: conf/cron.d
      interval: 10s
EOT

stop() {
    echo
    "$bin/xluo-agent" -p "$demo/agent" stop || true
    "$bin/xluo-server" -p "$demo/server" stop || true
    exit 0
}
trap stop INT TERM

"$bin/xluo-server" -p "$demo/server" start
"$bin/xluo-agent" -p "$demo/agent" start

export XLUO_SERVER="http://127.0.0.1:$port" XLUO_TOKEN="$token"
i=0
until "$bin/xluo" agents 2>/dev/null | grep -q online; do
    i=$((i + 1))
    if [ $i -gt 100 ]; then
        echo "the agent did not come online; see $demo/agent/log/xluo-agent.log" >&2
        stop
    fi
    sleep 0.1
done

cat <<EOT

xluo is running.
  server   http://127.0.0.1:$port   (log: demo/server/log/xluo-server.log)
  agent    demo/agent               (log: demo/agent/log/xluo-agent.log)

Try, in another terminal:
  export XLUO_SERVER=http://127.0.0.1:$port XLUO_TOKEN=$token
  $build/xluo agents
  $build/xluo metrics
  $build/xluo query node_cpu_usage_ratio --since 10m
  $build/xluo logs --grep registered        # the demo's own logs, tailed by the agent
  $build/xluo logs -f                        # follow them live
  $build/xluo checks                         # one check per script run (conf/cron.d)
  $build/xluo events --type demo -f          # seed 003's demo_cron.py every 10 s
  curl -s 127.0.0.1:21001/v1/push -d '{"type":"deploy","app":"shop"}'
  curl -s 127.0.0.1:21001/metrics            # the agent's own endpoint
  curl -s http://127.0.0.1:$port/metrics

Ctrl-C stops both.
EOT
"$bin/xluo" agents
while :; do sleep 3600 & wait $! || true; done
