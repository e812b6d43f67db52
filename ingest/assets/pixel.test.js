// Unit tests of pixel.js: `node --test ingest/assets/` (node 18 or later, no packages).
// The pure functions are required as a module; the page behaviour is checked by running the
// script in a `vm` context whose window, document and navigator are stubs the tests control.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');

const pixel = require('./pixel.js');
const { resolveClick, clickIdFromUrl, clickIdFromCookies, payload } = pixel;

const ENDPOINT = 'https://track.example/api/conversions/pixel';
// What GET /pixel.js serves: the script with this service's endpoint filled in.
const SOURCE = fs
  .readFileSync(path.join(__dirname, 'pixel.js'), 'utf8')
  .replace('__AFFILYNC_ENDPOINT__', ENDPOINT);
// The queue stub exactly as the top comment of pixel.js gives it to shops.
const STUB = /<script>(window\.affilync=.*?)<\/script>/.exec(SOURCE)[1];
const SHOP = 'https://shop.example';

test('resolveClick prefers the option, then the URL, then the cookie, then the stored copy', () => {
  const url = SHOP + '/landing?afk_cid=from_url';
  const cookies = 'theme=dark; afk_cid=from_cookie';
  assert.deepEqual(resolveClick({ click_id: 'from_option' }, url, cookies, 'stored'), { id: 'from_option', source: 'option' });
  assert.deepEqual(resolveClick({}, url, cookies, 'stored'), { id: 'from_url', source: 'url' });
  assert.deepEqual(resolveClick({}, SHOP + '/thanks', cookies, 'stored'), { id: 'from_cookie', source: 'first_party_cookie' });
  assert.deepEqual(resolveClick({}, SHOP + '/thanks', 'theme=dark', 'stored'), { id: 'stored', source: 'first_party_cookie' });
  assert.equal(resolveClick({}, SHOP + '/thanks', 'theme=dark', null), null);
  assert.equal(resolveClick(null, undefined, undefined, undefined), null);
});

test('resolveClick turns a numeric click_id option into a string and skips an empty one', () => {
  assert.deepEqual(resolveClick({ click_id: 42 }, '', '', null), { id: '42', source: 'option' });
  assert.deepEqual(resolveClick({ click_id: '' }, SHOP + '/?afk_cid=u', '', null), { id: 'u', source: 'url' });
});

test('clickIdFromUrl reads afk_cid from the query string only', () => {
  assert.equal(clickIdFromUrl(SHOP + '/landing?afk_cid=clk_abc'), 'clk_abc');
  assert.equal(clickIdFromUrl(SHOP + '/landing?utm=1&afk_cid=clk_abc&x=2'), 'clk_abc');
  assert.equal(clickIdFromUrl(SHOP + '/landing?afk_cid=clk_a%2Fb%3D'), 'clk_a/b=', 'percent-encoded');
  assert.equal(clickIdFromUrl(SHOP + '/landing?afk_cid=clk_abc#reviews'), 'clk_abc', 'a fragment after it');
  assert.equal(clickIdFromUrl(SHOP + '/landing?utm=1#tab&afk_cid=clk_abc'), null, 'only in the fragment');
  assert.equal(clickIdFromUrl(SHOP + '/landing?xafk_cid=clk_abc'), null, 'another parameter');
  assert.equal(clickIdFromUrl(SHOP + '/landing?afk_cid='), null, 'empty');
  assert.equal(clickIdFromUrl(SHOP + '/landing?afk_cid=%E0%A4%A'), null, 'malformed encoding');
  assert.equal(clickIdFromUrl(SHOP + '/landing'), null);
  assert.equal(clickIdFromUrl(undefined), null);
});

test('clickIdFromCookies finds afk_cid among other cookies', () => {
  assert.equal(clickIdFromCookies('afk_cid=clk_1'), 'clk_1');
  assert.equal(clickIdFromCookies('a=1; afk_cid=clk_2; b=3'), 'clk_2');
  assert.equal(clickIdFromCookies('a=1;afk_cid=clk_%2F3'), 'clk_/3');
  assert.equal(clickIdFromCookies('xafk_cid=clk_4; afk_cidx=5'), null);
  assert.equal(clickIdFromCookies('afk_cid='), null);
  assert.equal(clickIdFromCookies('afk_cid=%E0%A4%A'), null);
  assert.equal(clickIdFromCookies(''), null);
  assert.equal(clickIdFromCookies(undefined), null);
});

test('payload keeps the conversion fields, the metadata and the click', () => {
  const data = {
    order_id: 'o-1',
    amount: 99.99,
    currency: 'USD',
    event_type: 'sale',
    customer_email: 'jane@example.com',
    metadata: { coupon: 'SPRING' },
    password: 'never sent',
    customer_name: null,
  };
  assert.deepEqual(payload(data, { id: 'clk_1', source: 'url' }), {
    order_id: 'o-1',
    amount: 99.99,
    currency: 'USD',
    event_type: 'sale',
    customer_email: 'jane@example.com',
    metadata: { coupon: 'SPRING' },
    click_id: 'clk_1',
    click_source: 'url',
  });
  const bare = payload({ order_id: 'o-2', amount: '5', currency: null, metadata: 'not an object' }, null);
  assert.deepEqual(bare, { order_id: 'o-2', amount: '5' });
  assert.deepEqual(payload({ order_id: 'o-3', brand_id: 'brd_option' }, null).brand_id, 'brd_option');
});

/** A page at `href` with the pixel's globals stubbed; what the script does is recorded. */
function page(href, options = {}) {
  const calls = { beacons: [], fetches: [], images: [], cookieWrites: [], stored: {} };
  let jar = options.cookie || '';
  const document = {};
  Object.defineProperty(document, 'cookie', {
    get() {
      if (options.cookieThrows) throw new Error('SecurityError: cookies are disabled');
      return jar;
    },
    set(value) {
      if (options.cookieThrows) throw new Error('SecurityError: cookies are disabled');
      calls.cookieWrites.push(value);
      const pair = value.split(';')[0];
      jar = jar ? jar + '; ' + pair : pair;
    },
  });
  const window = { document, location: new URL(href), Blob, Date, JSON, Math, Object, Array, String, Number, Error, URL };
  window.window = window;
  const storage = {
    getItem: (key) => (key in calls.stored ? calls.stored[key] : null),
    setItem: (key, value) => {
      calls.stored[key] = String(value);
    },
  };
  if (options.storage === 'throws') {
    Object.defineProperty(window, 'localStorage', {
      get() {
        throw new Error('SecurityError: storage is disabled');
      },
    });
  } else if (options.storage === 'methods throw') {
    window.localStorage = {
      getItem() {
        throw new Error('QuotaExceededError');
      },
      setItem() {
        throw new Error('QuotaExceededError');
      },
    };
  } else {
    Object.assign(calls.stored, options.stored || {});
    window.localStorage = storage;
  }
  const navigator = {};
  if (options.beacon !== false) {
    navigator.sendBeacon = (url, body) => {
      calls.beacons.push({ url, body });
      return options.beacon !== 'refused';
    };
  }
  window.navigator = navigator;
  if (options.fetch !== false) {
    window.fetch = (url, init) => {
      calls.fetches.push({ url, init });
      return Promise.resolve({ status: 204 });
    };
  }
  window.Image = function Image(width, height) {
    this.width = width;
    this.height = height;
    calls.images.push(this);
  };
  const context = vm.createContext(window);
  return {
    calls,
    window,
    run: (code) => vm.runInContext(code, context),
    load: () => vm.runInContext(SOURCE, context),
  };
}

async function beaconBody(beacon) {
  assert.ok(beacon.body instanceof Blob, 'a Blob');
  assert.match(beacon.body.type, /^text\/plain/i, 'a simple request: no CORS preflight');
  return JSON.parse(await beacon.body.text());
}

const ORDER = "affilync('track', 'conversion', {order_id: 'o-1', amount: 99.99, currency: 'USD'});";

test('calls queued by the stub before the script loads are drained in order', async () => {
  const shop = page(SHOP + '/thanks');
  shop.run(STUB);
  shop.run("affilync('init', {brand_id: 'brd_1'});");
  shop.run(ORDER);
  assert.equal(shop.calls.beacons.length, 0, 'nothing is sent before the script loads');
  shop.load();
  assert.equal(shop.calls.beacons.length, 1);
  assert.equal(shop.calls.beacons[0].url, ENDPOINT);
  const body = await beaconBody(shop.calls.beacons[0]);
  assert.deepEqual(body, { order_id: 'o-1', amount: 99.99, currency: 'USD', brand_id: 'brd_1' });

  // After loading, calls go straight through, also from a reference to the stub kept earlier.
  const stub = page(SHOP + '/thanks');
  stub.run(STUB + 'var kept = window.affilync;');
  stub.load();
  stub.run("kept('track', 'conversion', {order_id: 'o-2', amount: '1'});");
  stub.run(STUB + "affilync('track', 'conversion', {order_id: 'o-3', amount: '1'});");
  const orders = await Promise.all(stub.calls.beacons.map(async (beacon) => (await beaconBody(beacon)).order_id));
  assert.deepEqual(orders, ['o-2', 'o-3']);
});

test('a conversion goes as a text/plain beacon carrying the click and its source', async () => {
  const shop = page(SHOP + '/thanks', { cookie: 'afk_cid=clk_fp' });
  shop.load();
  shop.run(ORDER);
  assert.equal(shop.calls.fetches.length + shop.calls.images.length, 0);
  const body = await beaconBody(shop.calls.beacons[0]);
  assert.equal(body.click_id, 'clk_fp');
  assert.equal(body.click_source, 'first_party_cookie');
});

test('a brand_id given with the conversion beats the one from init', async () => {
  const shop = page(SHOP + '/thanks');
  shop.run(STUB + "affilync('init', {brand_id: 'brd_init'});");
  shop.load();
  shop.run("affilync('track', 'conversion', {order_id: 'o-1', amount: '1', brand_id: 'brd_call'});");
  assert.equal((await beaconBody(shop.calls.beacons[0])).brand_id, 'brd_call');
});

test('without sendBeacon, or when it refuses, a credentialed fetch is used', () => {
  for (const beacon of [false, 'refused']) {
    const shop = page(SHOP + '/thanks?afk_cid=clk_u', { beacon });
    shop.load();
    shop.run(ORDER);
    assert.equal(shop.calls.fetches.length, 1, `beacon: ${beacon}`);
    const { url, init } = shop.calls.fetches[0];
    assert.equal(url, ENDPOINT);
    assert.equal(init.method, 'POST');
    assert.equal(init.credentials, 'include', 'the tracking cookie goes along');
    assert.equal(init.keepalive, true);
    assert.match(init.headers['Content-Type'], /^text\/plain/);
    assert.deepEqual(JSON.parse(init.body), {
      order_id: 'o-1',
      amount: 99.99,
      currency: 'USD',
      click_id: 'clk_u',
      click_source: 'url',
    });
    assert.equal(shop.calls.images.length, 0);
  }
});

test('with neither sendBeacon nor fetch, an image requests the GIF answer', () => {
  const shop = page(SHOP + '/thanks', { beacon: false, fetch: false, cookie: 'afk_cid=clk_i' });
  shop.load();
  shop.run("affilync('track', 'conversion', {order_id: 'o 1', amount: '5.00', metadata: {a: 1}});");
  assert.equal(shop.calls.images.length, 1);
  const src = new URL(shop.calls.images[0].src);
  assert.equal(src.origin + src.pathname, ENDPOINT);
  assert.equal(src.searchParams.get('format'), 'gif');
  assert.equal(src.searchParams.get('order_id'), 'o 1');
  assert.equal(src.searchParams.get('amount'), '5.00');
  assert.equal(src.searchParams.get('click_id'), 'clk_i');
  assert.equal(src.searchParams.get('click_source'), 'first_party_cookie');
  assert.equal(src.searchParams.has('metadata'), false, 'objects do not fit a query string');
});

test('a landing page keeps its afk_cid as a first-party cookie and a stored copy', async () => {
  const landing = page(SHOP + '/landing?utm=1&afk_cid=clk_land');
  landing.run(STUB + "affilync('init', {brand_id: 'brd_1', cookie_window_days: 7});");
  landing.load();
  const written = landing.calls.cookieWrites.at(-1);
  assert.match(written, /^afk_cid=clk_land; Max-Age=604800; Path=\/; SameSite=Lax; Secure$/);
  const copy = JSON.parse(landing.calls.stored.afk_cid);
  assert.equal(copy.id, 'clk_land');
  assert.ok(copy.until > Date.now() + 6 * 86400 * 1000);

  const plain = page('http://localhost:8000/landing?afk_cid=clk_http');
  plain.load();
  assert.match(plain.calls.cookieWrites[0], /^afk_cid=clk_http; Max-Age=2592000; Path=\/; SameSite=Lax$/, 'no Secure on http');

  // The thank-you page has no afk_cid in its URL: the stored copy still carries the click.
  const thanks = page(SHOP + '/thanks', { stored: landing.calls.stored });
  thanks.load();
  thanks.run(ORDER);
  assert.equal(thanks.calls.cookieWrites.length, 0, 'nothing to keep without afk_cid');
  const body = await beaconBody(thanks.calls.beacons[0]);
  assert.deepEqual([body.click_id, body.click_source], ['clk_land', 'first_party_cookie']);
});

test('an expired stored copy is not used', async () => {
  const stored = { afk_cid: JSON.stringify({ id: 'clk_old', until: Date.now() - 1000 }) };
  const shop = page(SHOP + '/thanks', { stored });
  shop.load();
  shop.run(ORDER);
  const body = await beaconBody(shop.calls.beacons[0]);
  assert.equal(body.click_id, undefined);
});

test('nothing throws into the page, and the conversion is still sent, when the browser refuses', async () => {
  const refusals = [
    { cookieThrows: true },
    { storage: 'throws' },
    { storage: 'methods throw' },
    { stored: { afk_cid: '{not json' } },
  ];
  for (const refusal of refusals) {
    const label = JSON.stringify(refusal);
    const shop = page(SHOP + '/thanks?afk_cid=clk_u', refusal);
    assert.doesNotThrow(() => {
      shop.run(STUB + "affilync('init', {brand_id: 'brd_1'});");
      shop.load();
      shop.run(ORDER);
    }, label);
    assert.equal(shop.calls.beacons.length, 1, label);
    const body = await beaconBody(shop.calls.beacons[0]);
    assert.deepEqual([body.order_id, body.click_id, body.click_source], ['o-1', 'clk_u', 'url'], label);
  }
});

test('bad calls and failing transports never throw into the page', () => {
  const shop = page(SHOP + '/thanks', { beacon: false });
  shop.window.fetch = () => {
    throw new TypeError('fetch is broken');
  };
  shop.window.Blob = function Blob() {
    throw new Error('no blobs here');
  };
  shop.load();
  assert.doesNotThrow(() => {
    shop.run(ORDER);
    shop.run("affilync(); affilync('track'); affilync('track', 'conversion'); affilync('init');");
    shop.run("affilync('track', 'conversion', {get order_id() { throw new Error('getter'); }});");
  });
  assert.equal(typeof shop.window.affilync, 'function');
});
