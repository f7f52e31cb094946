#!/usr/bin/env python3
"""Local stand-ins for the AWS credential endpoints, for test_creds.c.

Usage: creds_server.py PORTFILE

Listens on 127.0.0.1 on a free port, writes the port to PORTFILE (atomically)
and serves until killed or until its stdin closes (the test holds the other
end of a pipe, so the server never outlives it). Standard library only.

  GET  /container/auth          container credentials; Authorization must be
                                CONTAINER_AUTH (else 401)
  GET  /container/open          the same without the check
  GET  /container/flaky/<id>    503 for the first two requests, then credentials
  GET  /container/redirect      302 to /container/open (must not be followed)
  GET  /container/huge          a 70000-byte body
  GET  /container/garbage       malformed JSON holding "sEcReTLEAKED"
  GET  /container/partial       no Token
  PUT  /imds/<mode>/latest/api/token                       IMDSv2 token
  GET  /imds/<mode>/latest/meta-data/iam/security-credentials/[ROLE]
        modes: ok; v1 (token PUT 403, no token needed); norole (404 for the
        role); error (Code AssumeRoleUnauthorizedAccess); slow (every
        answer after 3 s). Without the token: 401 (except v1).
  POST /sts/<mode>              AssumeRoleWithWebIdentity; checks the form
        (Action, Version, RoleArn, WebIdentityToken, RoleSessionName);
        modes: ok; error (ExpiredTokenException); throttle/<id> (Throttling
        once, then ok); doctype (a DOCTYPE in the answer)
  POST /sts/<mode>              AssumeRole (Action=AssumeRole): the request
        must carry a valid SigV4 signature (service sts) by a key of SIGNERS,
        with its session token; ROLES says what each role returns, EXTERNAL_ARN
        needs ExternalId EXTERNAL_ID. Modes: ok; throttle/<id> as above.
  GET  /sso/<mode>/federation/credentials?account_id=&role_name=
        IAM Identity Center GetRoleCredentials: x-amz-sso_bearer_token must
        be one of SSO_TOKENS (else 401), the account SSO_ACCOUNT and the role
        SSO_ROLE (else 403). Mode ok.
  POST /oidc/<mode>/token       SSO-OIDC CreateToken, grant refresh_token with
        SSO_CLIENT/SSO_CLIENT_SECRET/SSO_REFRESH: a new access token and
        refresh token. Modes: ok; fail (400 invalid_grant)
  GET  /_hits/<path>            how many requests <path> has had
  GET  /_last/<path>            the last AssumeRole request to <path>, as
                                "name=value" lines: key, region, token and
                                form.<field>
"""
import hashlib
import hmac
import http.server
import json
import os
import re
import sys
import threading
import time
import urllib.parse

CONTAINER_AUTH = "ctr-Auth-token/42=="
IMDS_TOKEN = "AQAEAimds-session-token=="
ROLE = "metaflow-role"
ROLE_ARN = "arn:aws:iam::123456789012:role/metaflow"
# Exercises the form encoding: + / = & % and a space must survive.
WEB_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0+/=&%.s ig-_~"

CONTAINER_CREDS = {
    "AccessKeyId": "ASIACONTAINEREXAMPLE",
    "SecretAccessKey": "sEcReTcontainer/Key+1",
    "Token": "tOkEncontainer",
    "Expiration": "2030-01-02T03:04:05Z",
    "RoleArn": ROLE_ARN,
}
IMDS_CREDS = {
    "Code": "Success",
    "LastUpdated": "2031-05-06T01:08:09Z",
    "Type": "AWS-HMAC",
    "AccessKeyId": "ASIAIMDSEXAMPLE",
    "SecretAccessKey": "sEcReTimds",
    "Token": "tOkEnimds",
    "Expiration": "2031-05-06T07:08:09Z",
}

STS_OK = """<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:ns:sa</SubjectFromWebIdentityToken>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/metaflow/{session}</Arn>
      <AssumedRoleId>AROAEXAMPLE:{session}</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>ASIASTSEXAMPLE</AccessKeyId>
      <SecretAccessKey>sEcReTsts</SecretAccessKey>
      <SessionToken>tOkEnsts/{session}</SessionToken>
      <Expiration>2032-03-04T05:06:07.123Z</Expiration>
    </Credentials>
    <Provider>oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE</Provider>
    <Audience>sts.amazonaws.com</Audience>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata>
    <RequestId>ad4156e9-bce1-11e2-82e6-6b6efEXAMPLE</RequestId>
  </ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>
"""

STS_ERROR = """<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error>
    <Type>Sender</Type>
    <Code>{code}</Code>
    <Message>{message}</Message>
  </Error>
  <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>
</ErrorResponse>
"""

FIRST_ARN = "arn:aws:iam::123456789012:role/first"
EXTERNAL_ARN = "arn:aws:iam::123456789012:role/external"
EXTERNAL_ID = "ext-42"
# key id -> (secret, session token or None): who may sign AssumeRole.
SIGNERS = {
    "AKIDSOURCE": ("sEcReTsource", None),
    "AKIDENV": ("sEcReTENV", None),
    "ASIAFIRSTEXAMPLE": ("sEcReTfirst/x+y", "tOkEnfirst"),
    "ASIAIMDSEXAMPLE": ("sEcReTimds", "tOkEnimds"),
    "ASIACONTAINEREXAMPLE": ("sEcReTcontainer/Key+1", "tOkEncontainer"),
    "ASIASSOEXAMPLE": ("sEcReTsso", "tOkEnsso"),
}
# role -> the credentials AssumeRole returns
ROLES = {
    ROLE_ARN: ("ASIAROLEEXAMPLE", "sEcReTrole", "tOkEnrole", "2033-04-05T06:07:08Z"),
    FIRST_ARN: ("ASIAFIRSTEXAMPLE", "sEcReTfirst/x+y", "tOkEnfirst", "2031-02-03T04:05:06Z"),
    EXTERNAL_ARN: ("ASIAEXTERNALEXAMPLE", "sEcReText", "tOkEnext", "2033-04-05T06:07:08Z"),
}

STS_ASSUME_OK = """<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <SourceIdentity>DevUser123</SourceIdentity>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/demo/{session}</Arn>
      <AssumedRoleId>ARO123EXAMPLE123:{session}</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>{id}</AccessKeyId>
      <SecretAccessKey>{secret}</SecretAccessKey>
      <SessionToken>{token}</SessionToken>
      <Expiration>{expiration}</Expiration>
    </Credentials>
    <PackedPolicySize>8</PackedPolicySize>
  </AssumeRoleResult>
  <ResponseMetadata>
    <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>
  </ResponseMetadata>
</AssumeRoleResponse>
"""

SSO_TOKENS = {"sso-access-1", "sso-access-2"}
SSO_ACCOUNT = "123456789012"
SSO_ROLE = "MetaflowRole"
SSO_CLIENT, SSO_CLIENT_SECRET, SSO_REFRESH = "client-1", "sEcReTclient", "refresh-1"
SSO_EXP_MS = 2000000000123  # 2033-05-18T03:33:20.123Z

hits = {}
hits_lock = threading.Lock()
last = {}
AUTH_RE = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/, ]+)/(\d{8})/([a-z0-9-]+)/([a-z0-9]+)/"
                     r"aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})")


def verify_sigv4(method, raw_path, headers, body, service):
    """(key id, region) of a valid SigV4 header signature, else (None, why)."""
    m = AUTH_RE.fullmatch(headers.get("Authorization", ""))
    if not m:
        return None, "no or malformed Authorization header"
    key, day, region, svc, signed, signature = m.groups()
    if svc != service:
        return None, "signed for service " + svc
    if key not in SIGNERS:
        return None, "unknown access key"
    secret, token = SIGNERS[key]
    if headers.get("X-Amz-Security-Token") != token:
        return None, "wrong or missing session token"
    amz_date = headers.get("X-Amz-Date", "")
    if amz_date[:8] != day:
        return None, "credential scope date is not X-Amz-Date's"
    names = signed.split(";")
    if "host" not in names or "x-amz-date" not in names or names != sorted(names):
        return None, "SignedHeaders lacks host or x-amz-date, or is not sorted"
    if token and "x-amz-security-token" not in names:
        return None, "the session token is not signed"
    path, _, query = raw_path.partition("?")
    canonical = "\n".join([
        method, path, query,
        "".join("%s:%s\n" % (n, " ".join(headers.get(n, "").split())) for n in names),
        signed, hashlib.sha256(body).hexdigest()])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date,
                         "%s/%s/%s/aws4_request" % (day, region, svc),
                         hashlib.sha256(canonical.encode()).hexdigest()])
    k = ("AWS4" + secret).encode()
    for part in (day, region, svc, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest(),
                               signature):
        return None, "The request signature we calculated does not match"
    return key, region


def count(path):
    with hits_lock:
        hits[path] = hits.get(path, 0) + 1
        return hits[path]


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "creds-test/1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, body, ctype="application/json", headers=()):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        if path.startswith("/_hits/"):
            with hits_lock:
                n = hits.get(path[len("/_hits"):], 0)
            return self.reply(200, str(n), "text/plain")
        if path.startswith("/_last/"):
            with hits_lock:
                r = last.get(path[len("/_last"):], {})
            return self.reply(200, "".join("%s=%s\n" % kv for kv in sorted(r.items())),
                              "text/plain")
        n = count(path)
        if path.startswith("/container/"):
            return self.container(path, n)
        if path.startswith("/imds/"):
            return self.imds("GET", path)
        if path.startswith("/sso/"):
            return self.sso(path)
        self.reply(404, '{"message": "no such path"}')

    def do_PUT(self):
        path = urllib.parse.urlsplit(self.path).path
        count(path)
        if path.startswith("/imds/"):
            return self.imds("PUT", path)
        self.reply(404, "")

    def do_POST(self):
        path = urllib.parse.urlsplit(self.path).path
        n = count(path)
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        body = raw.decode()
        if path.startswith("/sts/"):
            return self.sts(path, n, body, raw)
        if path.startswith("/oidc/"):
            return self.oidc(path, body)
        self.reply(404, "")

    # ---- container

    def container(self, path, n):
        if path == "/container/auth":
            if self.headers.get("Authorization") != CONTAINER_AUTH:
                return self.reply(401, '{"code": "AccessDenied", "message": "bad token"}')
            return self.reply(200, json.dumps(CONTAINER_CREDS))
        if path == "/container/open":
            return self.reply(200, json.dumps(CONTAINER_CREDS))
        if path.startswith("/container/flaky/"):
            if n <= 2:
                return self.reply(503, '{"message": "try again"}')
            return self.reply(200, json.dumps(CONTAINER_CREDS))
        if path == "/container/redirect":
            return self.reply(302, "", headers=[("Location", "/container/open")])
        if path == "/container/huge":
            return self.reply(200, '{"pad": "' + "x" * 69980 + '"}')
        if path == "/container/garbage":
            return self.reply(200, '{"AccessKeyId": "ASIALEAKED", "SecretAccessKey": sEcReTLEAKED}')
        if path == "/container/partial":
            creds = dict(CONTAINER_CREDS)
            del creds["Token"]
            return self.reply(200, json.dumps(creds))
        self.reply(404, "")

    # ---- IMDS

    def imds(self, method, path):
        m = re.match(r"^/imds/([a-z0-9]+)(/.*)$", path)
        if not m:
            return self.reply(404, "", "text/plain")
        mode, rest = m.group(1), m.group(2)
        if mode == "slow":
            time.sleep(3)
        if rest == "/latest/api/token":
            if method != "PUT":
                return self.reply(405, "", "text/plain")
            if mode == "v1":
                return self.reply(403, "", "text/plain")
            ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
            if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                return self.reply(400, "", "text/plain")
            return self.reply(200, IMDS_TOKEN, "text/plain")
        if method != "GET":
            return self.reply(405, "", "text/plain")
        if mode != "v1" and self.headers.get("X-aws-ec2-metadata-token") != IMDS_TOKEN:
            return self.reply(401, "", "text/plain")
        base = "/latest/meta-data/iam/security-credentials/"
        if rest == base:
            if mode == "norole":
                return self.reply(404, "<html>Not Found</html>", "text/html")
            return self.reply(200, ROLE + "\n", "text/plain")
        if rest == base + ROLE:
            if mode == "error":
                return self.reply(200, json.dumps({
                    "Code": "AssumeRoleUnauthorizedAccess",
                    "Message": "EC2 cannot assume the role metaflow-role.",
                    "LastUpdated": "2031-05-06T01:08:09Z"}), "text/plain")
            return self.reply(200, json.dumps(IMDS_CREDS), "text/plain")
        self.reply(404, "", "text/plain")

    # ---- STS

    def sts_error(self, status, code, message):
        self.reply(status, STS_ERROR.format(code=code, message=message), "text/xml")

    def sts(self, path, n, body, raw):
        if not self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            return self.sts_error(400, "InvalidParameterValue", "not a form")
        try:
            form = urllib.parse.parse_qs(body, keep_blank_values=True, strict_parsing=True)
        except ValueError:
            return self.sts_error(400, "MalformedQueryString", "bad form")
        if any(len(v) != 1 for v in form.values()):
            return self.sts_error(400, "InvalidParameterValue", "repeated field")
        f = {k: v[0] for k, v in form.items()}
        if f.get("Action") == "AssumeRole" and f.get("Version") == "2011-06-15":
            return self.assume_role(path, n, f, raw)
        if f.get("Action") != "AssumeRoleWithWebIdentity" or f.get("Version") != "2011-06-15":
            return self.sts_error(400, "InvalidAction", "unknown action or version")
        session = f.get("RoleSessionName", "")
        if not re.fullmatch(r"[\w+=,.@-]{2,64}", session):
            return self.sts_error(400, "ValidationError", "bad RoleSessionName")
        if f.get("RoleArn") != ROLE_ARN:
            return self.sts_error(403, "AccessDenied",
                                  "Not authorized to perform sts:AssumeRoleWithWebIdentity")
        if f.get("WebIdentityToken") != WEB_TOKEN:
            return self.sts_error(400, "InvalidIdentityToken", "Incorrect token audience")
        mode = path[len("/sts/"):]
        if mode == "error":
            return self.sts_error(400, "ExpiredTokenException",
                                  "Token expired: current date/time 1700000000 must be before "
                                  "the expiration date/time 1600000000")
        if mode.startswith("throttle/") and n == 1:
            return self.sts_error(400, "Throttling", "Rate exceeded")
        if mode == "doctype":
            return self.reply(200, '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "sEcReT">]>'
                              + STS_OK.format(session=session), "text/xml")
        if mode == "ok" or mode.startswith("throttle/"):
            return self.reply(200, STS_OK.format(session=session), "text/xml")
        self.sts_error(404, "NotFound", "no such mode")

    def assume_role(self, path, n, f, raw):
        key, region = verify_sigv4("POST", self.path, self.headers, raw, "sts")
        if not key:
            return self.sts_error(403, "SignatureDoesNotMatch", region)
        rec = {"key": key, "region": region,
               "token": self.headers.get("X-Amz-Security-Token", "")}
        rec.update(("form." + k, v) for k, v in f.items())
        with hits_lock:
            last[path] = rec
        session = f.get("RoleSessionName", "")
        if not re.fullmatch(r"[\w+=,.@-]{2,64}", session):
            return self.sts_error(400, "ValidationError", "bad RoleSessionName")
        duration = f.get("DurationSeconds", "3600")
        if not duration.isdigit() or not 900 <= int(duration) <= 43200:
            return self.sts_error(400, "ValidationError", "bad DurationSeconds")
        role = f.get("RoleArn")
        if role not in ROLES or (role == EXTERNAL_ARN and f.get("ExternalId") != EXTERNAL_ID):
            return self.sts_error(403, "AccessDenied",
                                  "User: arn:aws:iam::123456789012:user/dev is not authorized "
                                  "to perform: sts:AssumeRole on resource: " + str(role))
        mode = path[len("/sts/"):]
        if mode.startswith("throttle/") and n == 1:
            return self.sts_error(400, "Throttling", "Rate exceeded")
        if mode == "ok" or mode.startswith("throttle/"):
            i, sec, tok, exp = ROLES[role]
            return self.reply(200, STS_ASSUME_OK.format(session=session, id=i, secret=sec,
                                                        token=tok, expiration=exp), "text/xml")
        self.sts_error(404, "NotFound", "no such mode")

    # ---- IAM Identity Center

    def sso(self, path):
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        token = self.headers.get("x-amz-sso_bearer_token", "")
        with hits_lock:
            last[path] = {"token": token}
        if not path.endswith("/federation/credentials"):
            return self.reply(404, '{"message": "no such path"}')
        if token not in SSO_TOKENS:
            return self.reply(401, '{"message": "Session token not found or invalid"}',
                              headers=[("x-amzn-ErrorType", "UnauthorizedException")])
        if q.get("account_id") != [SSO_ACCOUNT] or q.get("role_name") != [SSO_ROLE]:
            return self.reply(403, '{"message": "No access"}',
                              headers=[("x-amzn-ErrorType", "ForbiddenException")])
        self.reply(200, json.dumps({"roleCredentials": {
            "accessKeyId": "ASIASSOEXAMPLE", "secretAccessKey": "sEcReTsso",
            "sessionToken": "tOkEnsso", "expiration": SSO_EXP_MS}}))

    def oidc(self, path, body):
        try:
            f = json.loads(body)
        except ValueError:
            return self.reply(400, '{"error": "invalid_request"}')
        with hits_lock:
            last[path] = {"form." + k: v for k, v in f.items() if k != "clientSecret"}
        if path != "/oidc/ok/token" or f != {
                "grantType": "refresh_token", "clientId": SSO_CLIENT,
                "clientSecret": SSO_CLIENT_SECRET, "refreshToken": SSO_REFRESH}:
            return self.reply(400, '{"error": "invalid_grant", "error_description": "no"}')
        self.reply(200, json.dumps({"accessToken": "sso-access-2", "tokenType": "Bearer",
                                    "expiresIn": 3600, "refreshToken": "refresh-2"}))


def main():
    portfile = sys.argv[1]
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    tmp = portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.replace(tmp, portfile)

    def watch_stdin():
        # The test holds the write end: EOF means it is gone.
        try:
            sys.stdin.buffer.read()
        finally:
            os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()
    # A last resort, far beyond any test's duration.
    last = threading.Timer(900, lambda: os._exit(0))
    last.daemon = True
    last.start()
    srv.serve_forever()


if __name__ == "__main__":
    main()
