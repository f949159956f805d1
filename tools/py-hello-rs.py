#!/usr/bin/env python3
# rust-hello's job in Kong's Python PDK (PyPI kong-pdk 0.36): one
# get_header, one set_header per event. For `kong-pdk-dev bench --compare`,
# run it through an executable named py-hello-rs that does:
#   exec python3 tools/py-hello-rs.py --socket-name py-hello-rs.socket "$@"
import kong_pdk.pdk.kong as kong
Schema = ({"message": {"type": "string"}},)
version = "0.1.0"
priority = 1
class Plugin(object):
    def __init__(self, config):
        self.message = config.get("message") or "Kong!"
    def access(self, kong: kong.kong):
        host, err = kong.request.get_header("host")
        kong.response.set_header("x-hello-from-rust", "Rust says %s to %s" % (self.message, host))
if __name__ == "__main__":
    from kong_pdk.cli import start_dedicated_server
    start_dedicated_server("py-hello-rs", Plugin, version, priority, Schema)
