// Calls each transpiled component the way any JS host would, and checks the answers.
import assert from 'node:assert/strict';
import { translator } from './out/request_translator/request_translator.js';
import { safety } from './out/safety_policy/safety_policy.js';
import { classifier } from './out/error_classifier/error_classifier.js';

const req = translator.parseRequest(JSON.stringify({ prompt: 'a lake', size: '1792x1024', quality: 'hd' }));
assert.equal(req.aspectRatio, '16:9');
assert.equal(req.imageSize, '4K');
assert.equal(req.upstreamModel, 'gemini-3-pro-image-preview');

assert.throws(() => translator.parseRequest('{"n": 0, "prompt": "x"}'), (e) => e.payload.param === 'n' && e.payload.code === 'IMG_INVALID_REQUEST');

const body = JSON.parse(translator.buildUpstreamBody(req, [{ category: 'HARM_CATEGORY_HARASSMENT', threshold: 'OFF' }]));
assert.equal(body.generationConfig.imageConfig.aspectRatio, '16:9');

const screened = safety.screen(req, 'medium', { denyList: [] });
assert.equal(screened.tag, 'allow');
assert.deepEqual(screened.val.map((s) => s.threshold), Array(4).fill('BLOCK_MEDIUM_AND_ABOVE'));
assert.equal(safety.screen(req, 'off', { denyList: ['lake'] }).tag, 'deny');

const quota = classifier.classify({
  tag: 'http',
  val: {
    status: 429,
    headers: [],
    body: JSON.stringify({ error: { code: 429, status: 'RESOURCE_EXHAUSTED', message: 'quota', details: [
      { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '1.5s' }] } }),
  },
});
assert.equal(quota.code, 'IMG_QUOTA_EXHAUSTED');
assert.deepEqual(quota.accountAction, { tag: 'cool-down', val: 1500n });

console.log('jco: translator, safety and classifier components behave the same in Node');
