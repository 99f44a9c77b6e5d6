// Writes what Segment's Webhooks (Actions) destination sends, byte for byte: the body exactly as
// JSON.stringify writes it and X-Signature as the destination computes it (webhook/index.ts:
// createHmac('sha1', sharedSecret).update(JSON.stringify(payload[0].data)).digest('hex'), the
// first event only for a batch; JSON.stringify(data) of the one event otherwise).
//
//   node tests/ingestion/js_bodies/make_bodies.js > tests/ingestion/js_bodies/bodies.jsonl
//
// Each output line is JSON (written by Node, so \u escapes survive): name, body (the exact
// text; non-ASCII raw, a lone surrogate as \udXXX), and signature.
const { createHmac } = require('crypto')

const SECRET = 'js-shared-secret'
const when = '2026-11-29T10:00:00.000Z'

function track(id, properties) {
  return {
    type: 'track',
    event: 'Order Completed',
    userId: `js-user-${id}`,
    messageId: `js-message-${id}`,
    timestamp: when,
    receivedAt: when,
    properties
  }
}

const firsts = {
  small_float: track('small-float', { total: 0.00005, currency: 'USD' }),
  tiny_exponent: track('tiny-exponent', { total: 1e-7 }),
  big_exponent: track('big-exponent', { total: 1e21, count: 123456789012345680000 }),
  negative_zero: track('negative-zero', { total: -0, discount: -0.0 }),
  lone_surrogate: track('lone-surrogate', { note: 'half of 🎉: \ud83c', other: '\udf89 end' }),
  non_ascii: track('non-ascii', { note: 'naïve café, 東京, emoji 🎉, ß' }),
  line_separator: track('line-separator', { note: 'a\u2028b\u2029c', ctl: 'tab\tnew\nline\u0001' }),
  float_mix: track('float-mix', { total: 27.5, tax: 0.1 + 0.2, tiny: 5e-324, max: 1.7976931348623157e308 })
}

const sign = (text) => createHmac('sha1', SECRET).update(text).digest('hex')

for (const [name, first] of Object.entries(firsts)) {
  const second = track(`${name}-second`, { total: 10 })
  const batch = [first, second]
  // Batch: the body is the whole array; the signature covers the first element only.
  console.log(JSON.stringify({ name: `batch_${name}`, body: JSON.stringify(batch), signature: sign(JSON.stringify(batch[0])) }))
  // Single event: the body is the event; the signature covers all of it.
  console.log(JSON.stringify({ name: `single_${name}`, body: JSON.stringify(first), signature: sign(JSON.stringify(first)) }))
}
