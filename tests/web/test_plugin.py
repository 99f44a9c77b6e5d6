"""The web plugin (web/) in a real browser: Debian's headless Chromium loads a local page with the
pinned analytics-next and the plugin, settings inline, Segment's API at a local stand-in that
records the bodies as sent. The cookie is checked as Chromium reports it, the identify as the
stand-in received it.

What squatch.js does (its source, squatch-js 2.8.0, src/utils/cookieUtils.ts): `_saasquatch`
from the URL, base64url JSON, deep-merged into the cookie `_saasquatch` (base64url JSON), written
with js-cookie for 365 days, SameSite=Lax, not Secure, path /, on the widest domain the page may
set a cookie on. The plugin must write the same cookie, so either reads the other's.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import pytest

from mapper.segment import SegmentMessage

from .site import ANALYTICS_NEXT, ANALYTICS_NEXT_SHA256, Browsing, squatch_decode, squatch_encode

pytestmark = [pytest.mark.browser, pytest.mark.subprocess]

DAY = 86400.0
# SaaSquatch's referral cookie: the app's domain, then `{tenant}_CODE`, the codes by program
# (squatch.js's own test vector, with a name that needs UTF-8).
REFERRAL = {
    "app.referralsaasquatch.com": {
        "test_abc123_CODE": {"codes": {"program1": "CODE1"}, "codesExp": {"CODE1": 1234567}}
    }
}
ACCENTED = {
    "app.referralsaasquatch.com": {
        "test_abc123_CODE": {"codes": {"program1": "JOSÉ"}, "codesExp": {"JOSÉ": 7654321}}
    }
}
# squatch.js's own encoding of REFERRAL, from its test suite (FirstPartyCookies.feature).
SQUATCH_JS_VALUE = (
    "eyJhcHAucmVmZXJyYWxzYWFzcXVhdGNoLmNvbSI6eyJ0ZW5hbnRBbGlhc19DT0RFIjp7ImNvZGVzIjp7InByb2dyYW0x"
    "IjoiQ09ERTEifSwiY29kZXNFeHAiOnsiQ09ERTEiOjEyMzQ1Njd9fX19"
)


def landing(browsing: Browsing, value: str, host: str = "www.shop.test", **plugin: Any):
    return browsing.open(browsing.url(host, "landing.html", f"_saasquatch={value}"), **plugin)


def cookie_sent(body: dict[str, Any]) -> Any:
    return body.get("integrations", {}).get("SaaSquatch", {}).get("cookies")


def squatch_js_cookie(value: str, domain: str = ".shop.test") -> Any:
    """The cookie as squatch.js leaves it (js-cookie: 365 days, Lax, not Secure, path /)."""
    return {
        "name": "_saasquatch",
        "value": value,
        "domain": domain,
        "path": "/",
        "expires": time.time() + 365 * DAY,
        "secure": False,
        "sameSite": "Lax",
    }


def test_the_vendored_analytics_next_is_the_pinned_file() -> None:
    assert hashlib.sha256(ANALYTICS_NEXT.read_bytes()).hexdigest() == ANALYTICS_NEXT_SHA256


def test_a_referred_visit_stores_the_cookie_as_squatch_js_does_and_identify_carries_it(
    browsing: Browsing,
) -> None:
    page = landing(browsing, squatch_encode(ACCENTED))
    # Chromium takes 127.0.0.1 and localhost for secure contexts (a Secure cookie is kept there
    # over http); www.shop.test is not one, like a real http:// landing page.
    assert page.evaluate("isSecureContext") is False

    [cookie] = browsing.cookies()
    assert cookie["value"] == squatch_encode(ACCENTED)  # base64url, no padding, UTF-8 JSON
    assert squatch_decode(cookie["value"]) == ACCENTED
    # On the widest domain the page may use (shop.test, from www.shop.test), so app.shop.test
    # reads it too; path /, SameSite=Lax, readable by script, and not Secure: squatch.js sets
    # none of these otherwise, on http and https pages alike.
    assert (cookie["domain"], cookie["path"]) == (".shop.test", "/")
    assert (cookie["sameSite"], cookie["secure"], cookie["httpOnly"]) == ("Lax", False, False)
    assert cookie["expires"] == pytest.approx(time.time() + 365 * DAY, abs=600)
    assert browsing.cookies("_saasquatch_domain_probe") == []  # the domain probe cleans up

    body = browsing.identify(page, "user-1", {"email": "jose@example.com"})
    assert cookie_sent(body) == cookie["value"]
    # Only there: not a trait (traits persist and go everywhere), not in the context (whose
    # `page` has the landing URL, parameter included, as analytics.js always sends it).
    assert body["traits"] == {"email": "jose@example.com"}
    assert not {key.lower() for key in body["context"]} & {"saasquatch", "cookies"}
    assert browsing.problems == []
    assert browsing.console == []  # debug is off: the plugin says nothing
    assert browsing.outside == []  # nothing left this machine (no CDN, no Segment)


def test_a_later_page_without_the_parameter_on_a_sibling_subdomain_still_sends_it(
    browsing: Browsing,
) -> None:
    landing(browsing, squatch_encode(REFERRAL)).close()
    app = browsing.open(browsing.url("app.shop.test", "landing.html"))
    body = browsing.identify(app, "user-2", {"plan": "pro"})
    assert cookie_sent(body) == squatch_encode(REFERRAL)
    assert browsing.problems == []


def test_the_cookie_of_squatch_js_itself_is_read_and_sent_as_it_is(browsing: Browsing) -> None:
    browsing.context.add_cookies([squatch_js_cookie(SQUATCH_JS_VALUE)])
    page = browsing.open(browsing.url("app.shop.test", "landing.html"))
    body = browsing.identify(page, "user-3", {})
    assert cookie_sent(body) == SQUATCH_JS_VALUE
    assert squatch_decode(SQUATCH_JS_VALUE)["app.referralsaasquatch.com"]["tenantAlias_CODE"]


def test_an_existing_cookie_is_merged_as_squatch_js_merges_it(browsing: Browsing) -> None:
    """squatch.js's own cases: a new program's code is added beside the one already kept, a
    code for the same program replaces it, an array is replaced (not merged)."""
    existing = {
        "app.referralsaasquatch.com": {
            "test_abc123_CODE": {
                "codes": {"program2": "CODE2", "program1": "CODE0"},
                "codesExp": {"CODE2": 2222222},
                "tags": ["a", "b"],
            },
            "other_tenant_CODE": {"codes": {"p": "KEEP"}},
        }
    }
    incoming = {
        "app.referralsaasquatch.com": {
            "test_abc123_CODE": {
                "codes": {"program1": "CODE1"},
                "codesExp": {"CODE1": 1234567},
                "tags": ["c"],
            }
        }
    }
    browsing.context.add_cookies([squatch_js_cookie(squatch_encode(existing))])
    page = landing(browsing, squatch_encode(incoming))

    merged = {
        "app.referralsaasquatch.com": {
            "test_abc123_CODE": {
                "codes": {"program2": "CODE2", "program1": "CODE1"},
                "codesExp": {"CODE2": 2222222, "CODE1": 1234567},
                "tags": ["c"],
            },
            "other_tenant_CODE": {"codes": {"p": "KEEP"}},
        }
    }
    [cookie] = browsing.cookies()  # the same cookie rewritten, not a second one beside it
    assert cookie["value"] == squatch_encode(merged)  # keys in squatch.js's order, too
    assert cookie["domain"] == ".shop.test"
    assert cookie_sent(browsing.identify(page, "user-4", {})) == cookie["value"]


@pytest.mark.parametrize(
    "parameter",
    [
        "foo",  # squatch.js's own invalid cases
        "2",
        "_",
        "%20",
        squatch_encode([1, 2]),  # JSON, but not an object
        squatch_encode("text"),
        squatch_encode(None),
        squatch_encode(REFERRAL) + "%%%",
    ],
)
def test_a_malformed_parameter_is_ignored_without_a_sound(
    browsing: Browsing, parameter: str
) -> None:
    page = landing(browsing, parameter)
    assert browsing.cookies() == []
    body = browsing.identify(page, "user-5", {"plan": "pro"})
    assert "SaaSquatch" not in body.get("integrations", {})
    assert browsing.problems == []
    assert browsing.console == []  # not even a debug line: debug is off


def test_a_malformed_cookie_is_not_sent_and_a_new_parameter_replaces_it(
    browsing: Browsing,
) -> None:
    browsing.context.add_cookies([squatch_js_cookie("not-base64-json")])
    page = browsing.open(browsing.url("www.shop.test", "landing.html"))
    body = browsing.identify(page, "user-6", {})
    assert "SaaSquatch" not in body.get("integrations", {})

    landing(browsing, squatch_encode(REFERRAL))
    [cookie] = browsing.cookies()
    assert cookie["value"] == squatch_encode(REFERRAL)
    assert browsing.problems == []


def test_in_debug_mode_it_says_why_on_the_console_never_the_value(browsing: Browsing) -> None:
    secret = squatch_encode(["not", "an", "object"])
    landing(browsing, secret, debug=True)
    [line] = browsing.console
    assert line.startswith("debug: [saasquatch] ignored a _saasquatch URL parameter")
    assert secret not in line
    assert browsing.problems == []


def test_the_off_switch_writes_nothing_and_adds_nothing(browsing: Browsing) -> None:
    browsing.context.add_cookies([squatch_js_cookie(SQUATCH_JS_VALUE)])
    page = landing(browsing, squatch_encode(ACCENTED), enabled=False)
    [cookie] = browsing.cookies()
    assert cookie["value"] == SQUATCH_JS_VALUE  # untouched
    body = browsing.identify(page, "user-7", {})
    assert "SaaSquatch" not in body.get("integrations", {})


def test_a_call_that_turns_saasquatch_off_stays_off(browsing: Browsing) -> None:
    page = landing(browsing, squatch_encode(REFERRAL))
    body = browsing.identify(page, "user-8", {}, {"integrations": {"SaaSquatch": False}})
    assert body["integrations"]["SaaSquatch"] is False
    other = browsing.identify(page, "user-9", {}, {"integrations": {"SaaSquatch": {"x": 1}}})
    assert other["integrations"]["SaaSquatch"] == {"x": 1, "cookies": squatch_encode(REFERRAL)}


def test_the_cookie_domain_can_be_set(browsing: Browsing) -> None:
    landing(browsing, squatch_encode(REFERRAL), host="www.shop.test", cookieDomain="www.shop.test")
    [cookie] = browsing.cookies()
    assert cookie["domain"] == ".www.shop.test"  # app.shop.test would not see this one


def test_on_an_ip_address_the_cookie_is_the_hosts_own(browsing: Browsing) -> None:
    """No domain wider than 127.0.0.1 exists: the probe settles on the address itself."""
    page = landing(browsing, squatch_encode(REFERRAL), host="127.0.0.1")
    [cookie] = browsing.cookies()
    assert (cookie["domain"], cookie["value"]) == ("127.0.0.1", squatch_encode(REFERRAL))
    assert cookie_sent(browsing.identify(page, "user-10", {})) == cookie["value"]


def test_the_es_module_is_the_same_plugin(browsing: Browsing) -> None:
    url = browsing.url("www.shop.test", "module.html", f"_saasquatch={squatch_encode(REFERRAL)}")
    page = browsing.open(url)
    body = browsing.identify(page, "user-11", {})
    assert cookie_sent(body) == squatch_encode(REFERRAL)
    assert browsing.problems == []


@pytest.mark.parametrize(
    ("integrations", "withheld"),
    [
        ({"SaaSquatch": False}, True),
        ({"saas quatch": False}, True),  # the bridge drops `_`, `-` and space and ignores case
        ({"SAAS_QUATCH-V2": False}, True),
        ({"All": False, "SaaSquatch": False}, True),
        ({"All": False, "Webhooks": True}, False),  # routed to the bridge through Webhooks
        ({"All": False}, False),  # not SaaSquatch's own opt-out: the bridge delivers it
        ({"Saas\tquatch": False}, False),  # a tab is not one of the bridge's separators
        ({"SaaSquatch": None}, False),
        ({"SaaSquatch": 0}, False),  # only `false` opts out, as the bridge reads it
    ],
)
def test_only_the_bridges_own_opt_out_withholds_the_cookie(
    browsing: Browsing, integrations: dict[str, Any], withheld: bool
) -> None:
    """The cookie is withheld exactly when the bridge would skip the message anyway: its opt-out,
    matched as the bridge matches it (`SegmentMessage.excludes_saasquatch`)."""
    assert SegmentMessage(integrations=integrations).excludes_saasquatch() is withheld
    page = landing(browsing, squatch_encode(REFERRAL))
    body = browsing.identify(page, "user-12", {}, {"integrations": integrations})
    # analytics.js adds its own `"Segment.io": true`; everything else is the page's, or the cookie.
    sent = {name: value for name, value in body["integrations"].items() if name != "Segment.io"}
    if withheld:
        assert sent == integrations
    else:
        assert sent == {**integrations, "SaaSquatch": {"cookies": squatch_encode(REFERRAL)}}
    assert browsing.problems == []


def test_do_not_auto_drop_stops_only_the_drop_on_load(browsing: Browsing) -> None:
    """squatch.js's switch: nothing written when the plugin loads; a manual `pushCookie()` (the
    consent route) still writes, as squatch.js's `pushCookie()` does."""
    browsing.context.add_init_script("window.SaaSquatchDoNotAutoDrop = true;")
    page = landing(browsing, squatch_encode(REFERRAL))
    assert browsing.cookies() == []
    page.evaluate("SaaSquatchSegment.pushCookie()")
    [cookie] = browsing.cookies()
    assert cookie["value"] == squatch_encode(REFERRAL)
    assert cookie_sent(browsing.identify(page, "user-13", {})) == cookie["value"]
    assert browsing.problems == []


def test_a_parameter_longer_than_a_cookie_is_ignored_and_the_old_cookie_kept(
    browsing: Browsing,
) -> None:
    """A crafted link with a huge parameter (130 KB, ten thousand keys) costs nothing: a cookie
    holds at most 4096 characters, so the plugin does not even decode it."""
    browsing.context.add_cookies([squatch_js_cookie(squatch_encode(REFERRAL))])
    huge = squatch_encode({f"k{i}": 1 for i in range(10_000)})
    assert len(huge) > 100_000
    # Too long for a request line: put it in the page's address before the page's scripts run.
    browsing.context.add_init_script(
        f"history.replaceState(null, '', '?_saasquatch=' + {json.dumps(huge)});"
    )
    page = browsing.open(browsing.url("www.shop.test", "landing.html"), debug=True)
    assert huge in page.evaluate("location.search")
    [cookie] = browsing.cookies()
    assert cookie["value"] == squatch_encode(REFERRAL)
    assert browsing.console == [
        f"debug: [saasquatch] ignored a _saasquatch URL parameter of {len(huge)} characters, "
        "longer than a cookie can hold (4096)"
    ]
    assert browsing.problems == []


def test_proto_keys_are_merged_as_ordinary_keys(browsing: Browsing) -> None:
    """JSON may name a key `__proto__` or `constructor`: they stay ordinary keys of the cookie's
    object, and no object of the page gains a property."""
    existing = {"__proto__": {"x": 1}, **REFERRAL}
    incoming = {"__proto__": {"polluted": "yes"}, "constructor": {"prototype": {"p2": "yes"}}}
    browsing.context.add_cookies([squatch_js_cookie(squatch_encode(existing))])
    page = landing(browsing, squatch_encode(incoming))
    [cookie] = browsing.cookies()
    merged = {
        "__proto__": {"x": 1, "polluted": "yes"},
        **REFERRAL,
        "constructor": {"prototype": {"p2": "yes"}},
    }
    assert cookie["value"] == squatch_encode(merged)
    assert (
        page.evaluate("[({}).polluted, ({}).p2, ({}).x, Object.prototype.polluted]") == [None] * 4
    )
    assert browsing.problems == []


def test_a_merged_cookie_the_browser_refuses_is_reported_and_the_old_one_kept(
    browsing: Browsing,
) -> None:
    """Each side fits in a cookie, the merge does not: the browser drops the write (over its 4096
    characters) and keeps the cookie it had; debug mode says so, not "stored"."""
    old = {**REFERRAL, "pad": "x" * 2900}
    incoming = {
        "app.referralsaasquatch.com": {"t2_CODE": {"codes": {"p": "ALICE"}}},
        "pad2": "y" * 1000,
    }
    browsing.context.add_cookies([squatch_js_cookie(squatch_encode(old))])
    landing(browsing, squatch_encode(incoming), debug=True)
    [cookie] = browsing.cookies()
    assert cookie["value"] == squatch_encode(old)
    [line] = browsing.console
    assert line.startswith("debug: [saasquatch] the browser did not store the _saasquatch cookie")
    assert "4096" in line
    assert browsing.problems == []


@pytest.mark.parametrize(
    ("existing", "incoming", "merged"),
    [
        # A null kept in the cookie is replaced (squatch.js's merge throws on it, for good).
        ({"app.referralsaasquatch.com": None}, REFERRAL, REFERRAL),
        ({"a": {"b": None}}, {"a": {"b": {"c": 1}}}, {"a": {"b": {"c": 1}}}),
        # A null from the parameter replaces, as any value that is not an object does.
        ({"a": {"b": 1}, "c": 2}, {"a": None}, {"a": None, "c": 2}),
    ],
)
def test_a_null_on_either_side_of_the_merge_is_a_value_that_is_replaced(
    browsing: Browsing, existing: Any, incoming: Any, merged: Any
) -> None:
    browsing.context.add_cookies([squatch_js_cookie(squatch_encode(existing))])
    landing(browsing, squatch_encode(incoming))
    [cookie] = browsing.cookies()
    assert cookie["value"] == squatch_encode(merged)
    assert browsing.problems == []
