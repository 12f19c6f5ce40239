/**
 * The framing check of KServe answers (src/core/kserve-frame.ts), from the binary-data extension's
 * rules: with Inference-Header-Content-Length, a JSON header of exactly that many bytes whose
 * outputs' binary_data_size values add up to the bytes after it; without, one JSON object.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkKserveAnswer, joinFrame } from '../../src/core/kserve-frame.ts';

const header = JSON.stringify({ model_name: 'm', outputs: [{ name: 'a', datatype: 'FP32', shape: [2], parameters: { binary_data_size: 8 } }, { name: 'b', datatype: 'INT32', shape: [1], data: [3] }] });

describe('KServe answer framing', () => {
  it('accepts the published example: a JSON header, then exactly the declared bytes', () => {
    const { body, headerLength } = joinFrame(header, [Buffer.alloc(8, 0xff)]);
    assert.equal(checkKserveAnswer(body, String(headerLength)), undefined);
    // Bytes that look like anything (a brace, NaN bits) are not read.
    const { body: b2 } = joinFrame(header, [Buffer.from([0x7d, 0x7b, 0x7d, 0x7b, 0x00, 0xff, 0x7f, 0xc0])]);
    assert.equal(checkKserveAnswer(b2, String(headerLength)), undefined);
  });

  it('accepts a plain JSON answer without the header field', () => {
    assert.equal(checkKserveAnswer(Buffer.from(' {"outputs":[]}\n'), undefined), undefined);
  });

  it('refuses what a truncated, padded or mislabelled answer would be', () => {
    const { body, headerLength } = joinFrame(header, [Buffer.alloc(8)]);
    const cases: [string, Buffer, string | undefined, RegExp][] = [
      ['truncated binary', body.subarray(0, body.length - 1), String(headerLength), /declare 8 binary bytes, 7 follow/],
      ['extra bytes', Buffer.concat([body, Buffer.alloc(1)]), String(headerLength), /declare 8 binary bytes, 9 follow/],
      ['header length past the end', body, String(body.length + 1), /past the end/],
      ['header length not a number', body, '12abc', /not a byte count/],
      ['header length cuts the JSON', body, String(headerLength - 1), /not one complete JSON object/],
      ['framed answer without the header field', body, undefined, /not one complete/],
      ['HTML error page', Buffer.from('<html>bad gateway</html>'), undefined, /not one complete/],
      ['bad binary_data_size', joinFrame(JSON.stringify({ outputs: [{ parameters: { binary_data_size: -1 } }] }), []).body, String(JSON.stringify({ outputs: [{ parameters: { binary_data_size: -1 } }] }).length), /malformed binary_data_size/],
    ];
    for (const [name, b, hl, re] of cases) assert.match(checkKserveAnswer(b, hl) ?? 'accepted', re, name);
  });
});
