/*
 * Affilync conversion pixel. Load it on every page of the shop (it keeps the click id a
 * tracking link brought), and report a conversion on the thank-you page:
 *
 *   <script>window.affilync=window.affilync||function(){(affilync.q=affilync.q||[]).push(arguments)};</script>
 *   <script src="https://TRACKING-HOST/pixel.js" async></script>
 *   <script>affilync('track', 'conversion', {order_id: 'order_456', amount: 99.99, currency: 'USD'});</script>
 *
 * The click id is taken from, in order: the `click_id` option; `afk_cid` in this page's
 * URL (the landing page), which is also kept as a first-party cookie for the cookie
 * window; that first-party cookie; and the tracking host's own `afk_cid` cookie, which the
 * browser sends with the request when third-party cookies are allowed. With none of them,
 * a `customer_email` lets the service attribute across devices. Nothing here ever throws
 * into the host page.
 */
(function (root) {
  'use strict';

  var ENDPOINT = '__AFFILYNC_ENDPOINT__';
  var NAME = 'afk_cid';
  var DAY_SECONDS = 86400;
  var settings = { brand_id: null, cookie_window_days: 30 };
  var FIELDS = ['order_id', 'amount', 'currency', 'event_type', 'customer_email', 'brand_id'];

  /** `afk_cid` from a URL's query string, or null. */
  function clickIdFromUrl(href) {
    // The tracking link puts it in the query; a fragment belongs to the page's own scripts.
    var match = /[?&]afk_cid=([^&]*)/.exec(String(href || '').split('#')[0]);
    if (!match || !match[1]) return null;
    try {
      return decodeURIComponent(match[1].replace(/\+/g, ' '));
    } catch (e) {
      return null;
    }
  }

  /** The `afk_cid` first-party cookie from a `document.cookie` string, or null. */
  function clickIdFromCookies(cookies) {
    var parts = (cookies || '').split(/;\s*/);
    for (var i = 0; i < parts.length; i++) {
      if (parts[i].indexOf(NAME + '=') === 0) {
        var value = parts[i].slice(NAME.length + 1);
        try {
          return decodeURIComponent(value) || null;
        } catch (e) {
          return null;
        }
      }
    }
    return null;
  }

  /**
   * Which click a conversion belongs to, and where the id was found:
   * option > landing-page URL > first-party cookie (or its localStorage copy).
   * null means: let the tracking host's cookie or the customer e-mail decide.
   */
  function resolveClick(options, href, cookies, stored) {
    if (options && options.click_id) return { id: String(options.click_id), source: 'option' };
    var fromUrl = clickIdFromUrl(href);
    if (fromUrl) return { id: fromUrl, source: 'url' };
    var fromCookie = clickIdFromCookies(cookies) || stored || null;
    if (fromCookie) return { id: fromCookie, source: 'first_party_cookie' };
    return null;
  }

  /** What `read` returns, or null where the browser refuses (sandboxed frame, storage off). */
  function attempt(read) {
    try {
      return read();
    } catch (e) {
      return null;
    }
  }

  function storage() {
    return attempt(function () {
      return root.localStorage || null;
    });
  }

  /** Keeps a landing page's `afk_cid` on the shop's own domain for the cookie window. */
  function remember() {
    var id = clickIdFromUrl(root.location && root.location.href);
    if (!id) return;
    var seconds = Math.round(settings.cookie_window_days * DAY_SECONDS);
    var secure = root.location.protocol === 'https:' ? '; Secure' : '';
    // Each copy on its own: a browser that refuses one may still keep the other.
    attempt(function () {
      root.document.cookie =
        NAME + '=' + encodeURIComponent(id) + '; Max-Age=' + seconds + '; Path=/; SameSite=Lax' + secure;
    });
    var local = storage();
    // Safari caps script-set cookies at 7 days; the copy survives cookie clearing by other scripts.
    attempt(function () {
      if (local) local.setItem(NAME, JSON.stringify({ id: id, until: Date.now() + seconds * 1000 }));
    });
  }

  function storedClickId() {
    var local = storage();
    if (!local) return null;
    var entry = JSON.parse(local.getItem(NAME) || 'null');
    return entry && entry.until > Date.now() ? entry.id : null;
  }

  /** The request body: the conversion's fields and, when known, its click and its source. */
  function payload(data, click) {
    var body = {};
    for (var i = 0; i < FIELDS.length; i++) {
      var value = data[FIELDS[i]];
      if (value !== undefined && value !== null) body[FIELDS[i]] = value;
    }
    if (!body.brand_id && settings.brand_id) body.brand_id = settings.brand_id;
    if (data.metadata && typeof data.metadata === 'object') body.metadata = data.metadata;
    if (click) {
      body.click_id = click.id;
      body.click_source = click.source;
    }
    return body;
  }

  function query(body) {
    var pairs = [];
    for (var key in body) {
      if (Object.prototype.hasOwnProperty.call(body, key) && typeof body[key] !== 'object') {
        pairs.push(encodeURIComponent(key) + '=' + encodeURIComponent(body[key]));
      }
    }
    return pairs.join('&');
  }

  /** A beacon (survives leaving the page), else a credentialed fetch, else an image. */
  function send(body) {
    var text = JSON.stringify(body);
    var nav = root.navigator || {};
    if (typeof nav.sendBeacon === 'function' && typeof root.Blob === 'function') {
      // text/plain keeps it a simple request: no CORS preflight, cookies included.
      if (nav.sendBeacon(ENDPOINT, new root.Blob([text], { type: 'text/plain;charset=UTF-8' }))) return 'beacon';
    }
    if (typeof root.fetch === 'function') {
      root
        .fetch(ENDPOINT, { method: 'POST', body: text, credentials: 'include', keepalive: true, mode: 'cors', headers: { 'Content-Type': 'text/plain;charset=UTF-8' } })
        .catch(function () {});
      return 'fetch';
    }
    var image = new root.Image(1, 1);
    image.src = ENDPOINT + '?' + query(body) + '&format=gif';
    return 'image';
  }

  function track(event, data) {
    if (event !== 'conversion' || !data) return;
    // Evidence the browser will not give is no evidence: the conversion still goes, and the
    // tracking cookie or the customer e-mail may attribute it.
    var href = attempt(function () {
      return root.location.href;
    });
    var cookies = attempt(function () {
      return root.document.cookie;
    });
    var click = resolveClick(data, href, cookies, attempt(storedClickId));
    send(payload(data, click));
  }

  function handle(args) {
    if (!args || !args.length) return;
    if (args[0] === 'init' && args[1]) {
      if (args[1].brand_id) settings.brand_id = String(args[1].brand_id);
      if (args[1].cookie_window_days > 0) settings.cookie_window_days = Number(args[1].cookie_window_days);
      remember();
    } else if (args[0] === 'track') {
      track(args[1], args[2]);
    }
  }

  function guarded(fn) {
    return function () {
      try {
        return fn.apply(null, arguments);
      } catch (e) {
        return undefined;
      }
    };
  }

  var exported = { resolveClick: resolveClick, clickIdFromUrl: clickIdFromUrl, clickIdFromCookies: clickIdFromCookies, payload: payload };
  if (typeof module === 'object' && module.exports) module.exports = exported;
  if (!root.document) return;

  var queued = (root.affilync && root.affilync.q) || [];
  var api = guarded(function () {
    handle(Array.prototype.slice.call(arguments));
  });
  // A reference to the stub taken before loading still pushes here: pass its calls on.
  api.q = {
    push: function (args) {
      api.apply(null, args);
    },
  };
  root.affilync = api;
  guarded(remember)();
  for (var i = 0; i < queued.length; i++) guarded(handle)(Array.prototype.slice.call(queued[i]));
})(typeof window !== 'undefined' ? window : globalThis);
