"""First state of Mosquitto's dynamic-security plugin for the bundled broker of the AurumAI chart.

Runs as an init container of the broker's pod, before the broker starts. When the state file
does not exist yet (a new volume), it writes one holding exactly two accounts:

  - the broker administrator (the plugin's admin role): the auth service adds and removes
    device accounts through it;
  - the ingestion service, which may only subscribe to every device's telemetry, through its
    shared subscription.

An existing state file is left alone: the plugin keeps it up to date (devices added since,
changed passwords). Passwords are read from the files the chart mounts from its Secret, never
from the command line or the environment. The plugin stores salted PBKDF2-SHA512 hashes, as
`mosquitto_ctrl dynsec init` does. The local demo (deploy/scripts/demo.sh) runs this same
script.
"""

import argparse
import base64
import hashlib
import json
import os
import sys

# The plugin's own iteration count for the hashes it writes.
HASH_ITERATIONS = 101
MIN_PASSWORD_CHARS = 16
TELEMETRY = "aurum/v1/+/+/telemetry"
CONTROL = "$CONTROL/dynamic-security/#"


def read_password(path):
    with open(path, encoding="utf-8") as f:
        value = f.read().rstrip("\r\n")
    if len(value) < MIN_PASSWORD_CHARS:
        sys.exit(f"dynsec-init: {path} holds fewer than {MIN_PASSWORD_CHARS} characters")
    return value


def client(username, password, role):
    salt = os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, HASH_ITERATIONS)
    return {
        "username": username,
        "password": base64.b64encode(digest).decode("ascii"),
        "salt": base64.b64encode(salt).decode("ascii"),
        "iterations": HASH_ITERATIONS,
        "roles": [{"rolename": role}],
    }


def allow(acltype, topic):
    return {"acltype": acltype, "topic": topic, "allow": True}


def main():
    parser = argparse.ArgumentParser(description="Write the broker's first dynamic-security state.")
    parser.add_argument("state_file")
    parser.add_argument("--admin-user", required=True)
    parser.add_argument("--admin-password-file", required=True)
    parser.add_argument("--ingestion-user", required=True)
    parser.add_argument("--ingestion-password-file", required=True)
    parser.add_argument(
        "--group",
        default="",
        help="ingestion's shared-subscription group (empty: it subscribes plainly)",
    )
    args = parser.parse_args()

    if os.path.exists(args.state_file):
        print(f"dynsec-init: {args.state_file} exists; the broker's accounts are left as they are")
        return

    state = {
        "clients": [
            client(args.admin_user, read_password(args.admin_password_file), "admin"),
            client(args.ingestion_user, read_password(args.ingestion_password_file), "ingestion"),
        ],
        "roles": [
            {
                "rolename": "admin",
                "acls": [
                    allow("publishClientSend", CONTROL),
                    allow("publishClientReceive", CONTROL),
                    allow("subscribePattern", CONTROL),
                ],
            },
            {
                "rolename": "ingestion",
                "acls": [
                    allow("subscribePattern", TELEMETRY),
                    *(
                        [allow("subscribePattern", f"$share/{args.group}/{TELEMETRY}")]
                        if args.group
                        else []
                    ),
                ],
            },
        ],
        # Denied unless a role allows it; receiving what one may subscribe to is allowed.
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": True,
            "subscribe": False,
            "unsubscribe": True,
        },
    }
    partial = args.state_file + ".partial"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(state, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, args.state_file)
    print(f"dynsec-init: wrote {args.state_file} (accounts {args.admin_user}, {args.ingestion_user})")


if __name__ == "__main__":
    main()
