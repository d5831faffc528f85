"""Regenerate the koji_*.json fixtures (fedora-messaging form).

The message bodies are the example bodies of the koji-fedoramessaging-messages
1.3.0 sdist's own tests (tests/test_build.py, test_tag.py, test_rpm.py),
read from the test sources with ast, validated against the package's JSON
schemas, and serialized with fedora_messaging.message.dumps. Only the envelope
id and sent-at header are ours (fixed, so the fixtures are stable).

Usage (outside the repository):
    python3 -m venv /tmp/venv
    /tmp/venv/bin/pip install koji-fedoramessaging-messages==1.3.0
    /tmp/venv/bin/pip download --no-deps --no-binary :all: -d /tmp/sd \
        koji-fedoramessaging-messages==1.3.0
    tar -C /tmp/sd -xzf /tmp/sd/koji_fedoramessaging_messages-1.3.0.tar.gz
    /tmp/venv/bin/python gen_koji_fedora_messaging.py \
        /tmp/sd/koji_fedoramessaging_messages-1.3.0/tests .
"""

import ast
import json
import os
import sys

from fedora_messaging.message import dumps
from koji_fedoramessaging_messages.build import BuildStateChangeV1
from koji_fedoramessaging_messages.rpm import SignV1
from koji_fedoramessaging_messages.tag import TagV1, UntagV1


def dict_in(path, func, var=None):
    """The first dict literal returned by (or assigned to var in) func."""
    tree = ast.parse(open(path).read())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == func:
            for sub in ast.walk(node):
                if var is None and isinstance(sub, ast.Return):
                    return ast.literal_eval(sub.value)
                if (var is not None and isinstance(sub, ast.Assign)
                        and getattr(sub.targets[0], "id", None) == var):
                    return ast.literal_eval(sub.value)
    raise LookupError(func)


# (output, class, test file, function, variable, message id, sent-at)
CASES = [
    ("koji_build_complete.json", BuildStateChangeV1, "test_build.py",
     "msg_build_complete", None,
     "b3d2b8a4-0d1c-4a57-9a57-3c1a1b2e0001", "2023-06-09T07:35:15+00:00"),
    ("koji_build_deleted_livecd.json", BuildStateChangeV1, "test_build.py",
     "test_build_state_change_livecd", "body",
     "b3d2b8a4-0d1c-4a57-9a57-3c1a1b2e0002", "2024-01-01T08:00:00+00:00"),
    ("koji_tag.json", TagV1, "test_tag.py", "test_tag_message", "body",
     "b3d2b8a4-0d1c-4a57-9a57-3c1a1b2e0003", "2020-03-17T20:00:00+00:00"),
    ("koji_untag.json", UntagV1, "test_tag.py", "test_untag_message", "body",
     "b3d2b8a4-0d1c-4a57-9a57-3c1a1b2e0004", "2020-03-17T20:05:00+00:00"),
    ("koji_rpm_sign.json", SignV1, "test_rpm.py", "test_rpm_sign_message", "body",
     "b3d2b8a4-0d1c-4a57-9a57-3c1a1b2e0005", "2020-03-17T20:10:00+00:00"),
    ("koji_rpm_sign_no_build.json", SignV1, "test_rpm.py",
     "test_rpm_sign_message_no_build", "body",
     "b3d2b8a4-0d1c-4a57-9a57-3c1a1b2e0006", "2020-03-17T20:15:00+00:00"),
]


def main(tests_dir, out_dir):
    for out, cls, path, func, var, msg_id, sent_at in CASES:
        body = dict_in(os.path.join(tests_dir, path), func, var)
        msg = cls(body=body, topic="org.fedoraproject.prod." + cls.topic)
        msg.id = msg_id
        msg._properties.headers["sent-at"] = sent_at
        text = dumps(msg)  # validates against the package's schema
        with open(os.path.join(out_dir, out), "w") as f:
            json.dump(json.loads(text), f, indent=2, sort_keys=True)
            f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
