/**
 * The smallest protobuf writer that can emit an ONNX model: varint, length-delimited and fixed32
 * fields. Each helper returns the encoded bytes of one field (tag included), and `message` nests a
 * list of fields under a field number. Models this small need no streaming or buffer reuse.
 */

const WIRE_VARINT = 0;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

const utf8 = new TextEncoder();

/** Base-128 varint. Negative numbers are written as 64-bit two's complement (10 bytes), as int64 requires. */
export function varint(value: number | bigint): Uint8Array {
  let v = typeof value === 'bigint' ? value : BigInt(value);
  if (v < 0n) v = BigInt.asUintN(64, v);
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v !== 0n) byte |= 0x80;
    out.push(byte);
  } while (v !== 0n);
  return Uint8Array.from(out);
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

function tag(field: number, wire: number): Uint8Array {
  return varint((field << 3) | wire);
}

/** An int32/int64/enum field. */
export function int(field: number, value: number | bigint): Uint8Array {
  return concat([tag(field, WIRE_VARINT), varint(value)]);
}

/** A bytes field. */
export function bytes(field: number, value: Uint8Array): Uint8Array {
  return concat([tag(field, WIRE_LEN), varint(value.length), value]);
}

/** A string field (UTF-8). */
export function string(field: number, value: string): Uint8Array {
  return bytes(field, utf8.encode(value));
}

/** A float field (fixed32, little-endian). */
export function float(field: number, value: number): Uint8Array {
  const body = new Uint8Array(4);
  new DataView(body.buffer).setFloat32(0, value, true);
  return concat([tag(field, WIRE_FIXED32), body]);
}

/** An embedded message: the fields given, length-prefixed under `field`. */
export function message(field: number, fields: readonly Uint8Array[]): Uint8Array {
  return bytes(field, concat(fields));
}
