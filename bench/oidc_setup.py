"""Setup for bench/oidc-load.sh (standard library only): signs a person in through the JSON
sign-in, allows the client once on the hosted consent page (found by its "Allow" button, so
that the script does not depend on the form's field names), then runs --families code flows
with PKCE and `offline_access`, and writes what the wrk phases need into --out:

  cookie        the Cookie header of the signed-in browser
  refresh       one refresh token per line (one family each)
  access_token  a person's access token with openid, profile and email
"""

import argparse
import base64
import hashlib
import html.parser
import http.cookiejar
import json
import os
import urllib.error
import urllib.parse
import urllib.request


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Forms(html.parser.HTMLParser):
    """The forms of a page: action, hidden and named inputs, and the buttons' texts."""

    def __init__(self):
        super().__init__()
        self.forms, self.button = [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attrs.get("action", ""), "fields": [], "buttons": []})
        elif tag == "input" and self.forms and attrs.get("name"):
            self.forms[-1]["fields"].append((attrs["name"], attrs.get("value", "")))
        elif tag == "button" and self.forms:
            self.button = {"name": attrs.get("name"), "value": attrs.get("value", ""), "text": ""}
            self.forms[-1]["buttons"].append(self.button)

    def handle_data(self, data):
        if self.button is not None:
            self.button["text"] += data

    def handle_endtag(self, tag):
        if tag == "button":
            self.button = None


def main():
    parser = argparse.ArgumentParser()
    for name in ["base", "slug", "email", "password", "client-id", "client-secret", "redirect-uri", "verifier", "out"]:
        parser.add_argument("--" + name, required=True)
    parser.add_argument("--families", type=int, default=128)
    args = parser.parse_args()

    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)

    def call(url, data=None, headers=None, method=None):
        request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
        try:
            with browser.open(request) as answer:
                return answer.status, answer.headers, answer.read().decode()
        except urllib.error.HTTPError as answer:
            return answer.code, answer.headers, answer.read().decode()

    base = f"{args.base}/t/{args.slug}"
    status, _, body = call(f"{base}/login", json.dumps({"email": args.email, "password": args.password}).encode(),
                           {"Content-Type": "application/json"})
    assert status == 200, (status, body)

    challenge = base64.urlsafe_b64encode(hashlib.sha256(args.verifier.encode()).digest()).rstrip(b"=").decode()
    query = urllib.parse.urlencode({
        "response_type": "code", "client_id": args.client_id, "redirect_uri": args.redirect_uri,
        "scope": "openid profile email offline_access", "state": "bench",
        "code_challenge": challenge, "code_challenge_method": "S256",
    })
    authorize = f"{base}/oauth/authorize?{query}"
    basic = base64.b64encode(f"{args.client_id}:{args.client_secret}".encode()).decode()

    def code_of(location):
        return urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)["code"][0]

    def next_code():
        status, headers, body = call(authorize)
        if status == 200:  # the consent page, once
            forms = Forms()
            forms.feed(body)
            form = next(f for f in forms.forms if any(b["text"].strip() == "Allow" for b in f["buttons"]))
            button = next(b for b in form["buttons"] if b["text"].strip() == "Allow")
            fields = form["fields"] + ([(button["name"], button["value"])] if button["name"] else [])
            action = urllib.parse.urljoin(authorize, form["action"] or authorize)
            status, headers, body = call(action, urllib.parse.urlencode(fields).encode(),
                                         {"Content-Type": "application/x-www-form-urlencoded"})
        assert status in (302, 303), (status, body)
        return code_of(headers["Location"])

    tokens = []
    for _ in range(args.families):
        form = urllib.parse.urlencode({
            "grant_type": "authorization_code", "code": next_code(),
            "redirect_uri": args.redirect_uri, "code_verifier": args.verifier,
        }).encode()
        status, _, body = call(f"{base}/oauth/token", form, {
            "Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Basic {basic}"})
        assert status == 200, (status, body)
        tokens.append(json.loads(body))

    os.makedirs(args.out, exist_ok=True)
    cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
    with open(os.path.join(args.out, "cookie"), "w") as f:
        f.write(cookie)
    with open(os.path.join(args.out, "refresh"), "w") as f:
        f.write("".join(t["refresh_token"] + "\n" for t in tokens))
    with open(os.path.join(args.out, "access_token"), "w") as f:
        f.write(tokens[0]["access_token"])
    with open(os.path.join(args.out, "challenge"), "w") as f:
        f.write(challenge)


if __name__ == "__main__":
    main()
