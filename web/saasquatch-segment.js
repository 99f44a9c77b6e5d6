/*! saasquatch-segment: SaaSquatch referral-cookie attribution through Segment's analytics.js.
 * An enrichment plugin for @segment/analytics-next. MIT. docs/web-plugin.md in segment-saasquatch.
 *
 * It keeps the first-party `_saasquatch` cookie exactly as squatch.js does (read from the URL's
 * `_saasquatch` parameter, merged into the cookie, same encoding, lifetime and flags), and adds the
 * cookie's value to every identify as `integrations.SaaSquatch.cookies`, which the bridge sends as
 * the `cookies` field of SaaSquatch's user upsert. It never throws into the page.
 *
 * A classic script (sets `SaaSquatchSegment` on the global object, and `module.exports` where
 * CommonJS `require`s it) that is also imported by the ES module `saasquatch-segment.mjs`; no
 * dependencies, no build step.
 */
(function (root) {
  "use strict";

  var NAME = "_saasquatch"; // the URL parameter and the cookie, as squatch.js names both
  var DAYS = 365; // squatch.js: js-cookie's `expires: 365`
  var PROBE = "_saasquatch_domain_probe";
  var OFF = ["saasquatch", "saasquatchv2"]; // the bridge's SAASQUATCH_INTEGRATION_KEYS
  var MOST = 4096; // characters a browser keeps in a cookie's name and value

  function isRecord(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value);
  }

  // base64url of UTF-8, without padding, as squatch.js encodes and decodes the cookie.
  function decode(text) {
    var binary = atob(text.replace(/_/g, "/").replace(/-/g, "+"));
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return new TextDecoder("utf8").decode(bytes);
  }

  function encode(text) {
    var bytes = new TextEncoder().encode(text);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
    return btoa(binary).replace(/=/g, "").replace(/\+/g, "-").replace(/\//g, "_");
  }

  /** The JSON object `text` encodes, or null (anything else: not base64url, not JSON, not an
   * object). */
  function parse(text) {
    try {
      var value = JSON.parse(decode(text));
      return isRecord(value) ? value : null;
    } catch (_error) {
      return null;
    }
  }

  // An own data property, whatever the key: `out[key] = value` would run the `__proto__` setter.
  function put(out, key, value) {
    Object.defineProperty(out, key, {
      value: value,
      writable: true,
      enumerable: true,
      configurable: true,
    });
  }

  // squatch.js's merge: objects present on both sides are merged key by key, anything else (an
  // array, a string, a number, null) from `source` replaces what `target` had. Keys in
  // squatch.js's order (`target`'s, then `source`'s new ones); one pass over each side. Unlike
  // squatch.js, a null on either side is a value like any other (squatch.js throws on it, and
  // then never writes the cookie again).
  function merge(target, source) {
    var out = {};
    var kept = Object.keys(target);
    for (var i = 0; i < kept.length; i++) put(out, kept[i], target[kept[i]]);
    var given = Object.keys(source);
    for (var j = 0; j < given.length; j++) {
      var key = given[j];
      var before = Object.prototype.hasOwnProperty.call(target, key) ? target[key] : undefined;
      var value = source[key];
      put(out, key, isRecord(before) && isRecord(value) ? merge(before, value) : value);
    }
    return out;
  }

  /** Every `_saasquatch` cookie's value the page sees, in the browser's order, as js-cookie
   * (squatch.js's reader) reads one: quotes removed, %-escapes decoded. */
  function readCookies() {
    var pairs = document.cookie ? document.cookie.split("; ") : [];
    var values = [];
    for (var i = 0; i < pairs.length; i++) {
      var at = pairs[i].indexOf("=");
      if (pairs[i].slice(0, at) !== NAME) continue;
      var value = pairs[i].slice(at + 1);
      if (value.charAt(0) === '"') value = value.slice(1, -1);
      try {
        values.push(value.replace(/(%[\dA-F]{2})+/gi, decodeURIComponent));
      } catch (_error) {
        values.push(value);
      }
    }
    return values;
  }

  /** The first `_saasquatch` cookie's value (the one js-cookie returns); undefined when none. */
  function readCookie() {
    return readCookies()[0];
  }

  // The widest domain this page may set a cookie on (`example.com` from `shop.example.com`),
  // found the way squatch.js finds it: by trying, from the top-level name down.
  function topDomain() {
    var labels = location.hostname.split(".");
    for (var i = labels.length - 1; i >= 0; i--) {
      var candidate = labels.slice(i).join(".");
      document.cookie = PROBE + "=1;domain=." + candidate + ";";
      if (document.cookie.indexOf(PROBE + "=1") > -1) {
        document.cookie =
          PROBE + "=;domain=." + candidate + ";expires=Thu, 01 Jan 1970 00:00:01 GMT;";
        return candidate;
      }
    }
    return undefined;
  }

  function writeCookie(value, domain) {
    var expires = new Date(Date.now() + DAYS * 864e5).toUTCString();
    document.cookie =
      NAME +
      "=" +
      value +
      "; expires=" +
      expires +
      (domain ? "; domain=" + domain : "") +
      "; path=/; SameSite=Lax";
  }

  function settings(options) {
    var given = isRecord(options) ? options : {};
    return {
      enabled: given.enabled !== false,
      cookieDomain: typeof given.cookieDomain === "string" ? given.cookieDomain : undefined,
      debug: given.debug === true,
    };
  }

  function logger(config) {
    return function (message) {
      if (config.debug && typeof console !== "undefined") console.debug("[saasquatch] " + message);
    };
  }

  /** `automatic`: the drop when the plugin loads, which squatch.js's switch
   * `window.SaaSquatchDoNotAutoDrop` turns off (a manual `pushCookie()` still writes). */
  function pushWith(config, log, automatic) {
    if (!config.enabled) return;
    var param = new URLSearchParams(location.search).get(NAME) || "";
    if (!param) return;
    if (automatic && root.SaaSquatchDoNotAutoDrop) {
      log("window.SaaSquatchDoNotAutoDrop is set: the cookie waits for pushCookie()");
      return;
    }
    if (param.length > MOST) {
      // Never decoded: a crafted link must not cost the page anything.
      log(
        "ignored a _saasquatch URL parameter of " +
          param.length +
          " characters, longer than a cookie can hold (" +
          MOST +
          ")"
      );
      return;
    }
    var incoming = parse(param);
    if (!incoming) {
      log("ignored a _saasquatch URL parameter that is not base64url JSON of an object");
      return;
    }
    var existing = readCookie();
    var current = existing === undefined ? null : parse(existing);
    if (existing !== undefined && !current) log("replacing a _saasquatch cookie it cannot read");
    try {
      var merged = current ? merge(current, incoming) : incoming;
      var value = encode(JSON.stringify(merged));
      writeCookie(value, config.cookieDomain || topDomain());
      // A browser drops a cookie over its size limit without a word, and keeps the one it had.
      if (readCookies().indexOf(value) > -1) log("stored the _saasquatch cookie");
      else
        log(
          "the browser did not store the _saasquatch cookie (" +
            (NAME.length + 1 + value.length) +
            " characters; a browser keeps at most " +
            MOST +
            "): the cookie it had is kept"
        );
    } catch (_error) {
      log("could not merge or store the _saasquatch cookie");
    }
  }

  /** Store `?_saasquatch=` from the current URL in the cookie now: for single-page apps whose
   * route changes after the plugin loaded (squatch.js's `pushCookie`). */
  function pushCookie(options) {
    var config = settings(options);
    try {
      pushWith(config, logger(config), false);
    } catch (_error) {
      logger(config)("could not read the _saasquatch URL parameter");
    }
  }

  /** The cookie's value when it holds a JSON object, else undefined. */
  function cookieValue() {
    var value = readCookie();
    return value !== undefined && parse(value) ? value : undefined;
  }

  // The bridge's `trait_key`: without `_`, `-` and space (only these), ignoring case.
  function normalized(name) {
    return String(name).replace(/[_\- ]/g, "").toLowerCase();
  }

  /** The event's `integrations` with the cookie under `SaaSquatch`, or null when the call must
   * not carry it: the page opted SaaSquatch out exactly as the bridge reads an opt-out (`false`
   * under `SaaSquatch` or `SaaSquatch v2`, spelled as `normalized` allows). `All: false` is not
   * one: a call routed with `{All: false, Webhooks: true}` reaches the bridge, which delivers it. */
  function withCookie(integrations, value) {
    var given = isRecord(integrations) ? integrations : {};
    var keys = Object.keys(given);
    for (var i = 0; i < keys.length; i++) {
      if (given[keys[i]] === false && OFF.indexOf(normalized(keys[i])) > -1) return null;
    }
    var own = given.SaaSquatch;
    return { ...given, SaaSquatch: { ...(isRecord(own) ? own : {}), cookies: value } };
  }

  /** The analytics-next plugin. Options: `cookieDomain` (e.g. "example.com" to share the cookie
   * between www. and app.; default: squatch.js's choice, the widest domain the page may use),
   * `enabled` (false: no cookie written, nothing added), `debug` (console messages). */
  function saasquatchCookie(options) {
    var config = settings(options);
    var log = logger(config);
    return {
      name: "SaaSquatch referral cookie",
      type: "enrichment",
      version: "1.0.0",
      isLoaded: function () {
        return true;
      },
      load: function () {
        try {
          pushWith(config, log, true);
        } catch (_error) {
          log("could not read the _saasquatch URL parameter");
        }
        return Promise.resolve();
      },
      identify: function (ctx) {
        try {
          if (!config.enabled) return ctx;
          var value = cookieValue();
          if (value === undefined) return ctx;
          var integrations = withCookie(ctx.event.integrations, value);
          if (integrations) ctx.event.integrations = integrations;
          else log("SaaSquatch is off for this call: cookie not added");
        } catch (_error) {
          log("could not add the _saasquatch cookie to the identify");
        }
        return ctx;
      },
    };
  }

  var api = {
    saasquatchCookie: saasquatchCookie,
    pushCookie: pushCookie,
    cookieValue: function () {
      try {
        return cookieValue();
      } catch (_error) {
        return undefined;
      }
    },
  };
  root.SaaSquatchSegment = api;
  // CommonJS (`require`, and bundlers that follow it): the same object.
  if (typeof module === "object" && module && typeof module.exports === "object") {
    module.exports = api;
  }
})(typeof globalThis !== "undefined" ? globalThis : window);
