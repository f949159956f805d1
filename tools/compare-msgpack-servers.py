# Drives a MsgPack:1 plugin server with the messages Kong sends, in edge
# cases too, and prints each reply (error, result shape), to compare servers
# (ours, Kong's Python PDK, Kong's JavaScript PDK) side by side. Needs the
# Python `msgpack` package (it comes with PyPI `kong-pdk`).
#
#   python3 compare-msgpack-servers.py <socket> <plugin-name> <config-json>
#
# The results for kong-pdk, the Python PDK 0.36 and the JavaScript PDK
# 0.6.0 are in docs/MSGPACK.md.
import msgpack, socket, sys, json, time

def conn(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.settimeout(3)
    return s, msgpack.Unpacker(raw=False)

msgid = [0]
def call(c, method, params):
    s, up = c
    msgid[0] += 1
    s.sendall(msgpack.packb([0, msgid[0], method, [params]], use_bin_type=True))
    while True:
        for m in up:
            return m
        try:
            data = s.recv(65536)
        except socket.timeout:
            return "NO REPLY (3 s)"
        if not data:
            return "CLOSED"
        up.feed(data)

def show(label, reply):
    if isinstance(reply, list):
        err, res = reply[2], reply[3]
        if isinstance(res, dict):
            res = {k: (v if k in ("Data", "Name") else type(v).__name__) for k, v in res.items()}
        print(f"{label:42} error={err!r} result={res!r}")
    else:
        print(f"{label:42} {reply}")

path, name, config = sys.argv[1], sys.argv[2], sys.argv[3]
c = conn(path)
r = call(c, "plugin.StartInstance", {"Name": name, "Config": config})
show("StartInstance (valid config)", r)
iid = r[3]["Id"]
show("StartInstance (config not JSON)", call(c, "plugin.StartInstance", {"Name": name, "Config": "{not json"}))
show("InstanceStatus (known)", call(c, "plugin.InstanceStatus", iid))
show("InstanceStatus (unknown 4242)", call(c, "plugin.InstanceStatus", 4242))
show("HandleEvent (unknown instance 4242)", call(c, "plugin.HandleEvent", {"InstanceId": 4242, "EventName": "access"}))
show("Step (unknown event 999)", call(c, "plugin.Step", {"EventId": 999, "Data": "x"}))
show("unknown method plugin.Nope", call(c, "plugin.Nope", {}))
r = call(c, "plugin.HandleEvent", {"InstanceId": iid, "EventName": "access"})
show("HandleEvent (access)", r)
eid = r[3]["EventId"] if isinstance(r, list) and r[3] else None
show("StepError on the first call", call(c, "plugin.StepError", {"EventId": eid, "Data": "boom"}))
show("CloseInstance (known)", call(c, "plugin.CloseInstance", iid))
show("CloseInstance (again)", call(c, "plugin.CloseInstance", iid))
