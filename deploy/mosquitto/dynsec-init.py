#!/usr/bin/env python3
"""Writes the first state file of Mosquitto's dynamic-security plugin for AurumAI.

Two accounts exist from the start, and nothing else:
  - the broker administrator (the plugin's admin role), which the auth service uses to add and
    remove device accounts;
  - the ingestion service, which may only subscribe to the telemetry of every device through
    its shared subscription.
Devices are added later, one account and one role per device (POST /v1/devices).

Passwords come from the environment, never from the command line (which other local users can
read): AURUM_BROKER_ADMIN_PASSWORD and AURUM_BROKER_INGESTION_PASSWORD. The plugin stores
salted PBKDF2-SHA512 hashes, as `mosquitto_ctrl dynsec init` does.

Usage: dynsec-init.py OUTPUT_FILE [--admin-user NAME] [--ingestion-user NAME] [--group NAME]
"""

import argparse
import base64
import hashlib
import json
import os
import sys

ITERATIONS = 101  # the plugin's own default for the hashes it writes


def account(username, password, roles):
    salt = os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, ITERATIONS)
    return {
        "username": username,
        "password": base64.b64encode(digest).decode(),
        "salt": base64.b64encode(salt).decode(),
        "iterations": ITERATIONS,
        "roles": [{"rolename": r} for r in roles],
    }


def acl(kind, topic):
    return {"acltype": kind, "topic": topic, "allow": True}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("output")
    p.add_argument("--admin-user", default="aurum-admin")
    p.add_argument("--ingestion-user", default="aurum-ingestion")
    p.add_argument("--group", default="ingestion", help="ingestion's shared-subscription group")
    args = p.parse_args()

    passwords = {}
    for var in ("AURUM_BROKER_ADMIN_PASSWORD", "AURUM_BROKER_INGESTION_PASSWORD"):
        value = os.environ.get(var, "")
        if len(value) < 16:
            sys.exit(f"dynsec-init: {var} must hold a password of at least 16 characters")
        passwords[var] = value

    control = "$CONTROL/dynamic-security/#"
    telemetry = "aurum/v1/+/+/telemetry"
    state = {
        "clients": [
            account(args.admin_user, passwords["AURUM_BROKER_ADMIN_PASSWORD"], ["admin"]),
            account(args.ingestion_user, passwords["AURUM_BROKER_INGESTION_PASSWORD"], ["ingestion"]),
        ],
        "roles": [
            {
                "rolename": "admin",
                "acls": [
                    acl("publishClientSend", control),
                    acl("publishClientReceive", control),
                    acl("subscribePattern", control),
                ],
            },
            {
                "rolename": "ingestion",
                "acls": [
                    acl("subscribePattern", f"$share/{args.group}/{telemetry}"),
                    acl("subscribePattern", telemetry),
                ],
            },
        ],
        # Nothing is allowed unless a role says so, except receiving what one may subscribe to.
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": True,
            "subscribe": False,
            "unsubscribe": True,
        },
    }
    tmp = args.output + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(state, f, indent=2)
    os.replace(tmp, args.output)


if __name__ == "__main__":
    main()
