"""Signs fedmsg envelopes with fedmsg's own code, for tests/trust.rs.

Usage: fedmsg_sign.py CA_CERT CRL ROUTING_POLICY_JSON < requests > signed

Each request line is JSON: {"ssldir": DIR, "certname": NAME or null, "message": ENVELOPE,
"tamper": bool}. NAME.key and NAME.crt in DIR sign the envelope (fedmsg.crypto.sign with
the x509 backend: `crypto`, `signature` and `certificate` added); null leaves it unsigned;
`tamper` changes the body after signing. Each answer line is JSON: {"envelope": the
result, "fedmsg_valid": what fedmsg.crypto.validate says of it against CA_CERT, CRL and
the routing policy}, so the test can hold Tidings' verdicts to fedmsg's.
"""

import json
import sys

import fedmsg.crypto


def main():
    ca_cert, crl, routing_policy = sys.argv[1:4]
    config = {
        "crypto_backend": "x509",
        "crypto_validate_backends": ["x509"],
        "ca_cert_location": ca_cert,
        "crl_location": crl,
        "routing_policy": json.loads(routing_policy),
    }
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        envelope = request["message"]
        if request.get("certname"):
            envelope = fedmsg.crypto.sign(
                envelope, ssldir=request["ssldir"], certname=request["certname"], **config
            )
        if request.get("tamper"):
            envelope["msg"]["tampered"] = True
        valid = bool(fedmsg.crypto.validate(json.loads(json.dumps(envelope)), **config))
        print(json.dumps({"envelope": envelope, "fedmsg_valid": valid}), flush=True)


if __name__ == "__main__":
    main()
