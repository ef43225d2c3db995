/**
 * A minimal YAML emitter for the trainer configs we write (maps, lists, strings, numbers, booleans, null).
 * Strings that YAML could read as something else are written as JSON double-quoted scalars (valid YAML).
 * Keys starting with `#` are emitted as comment lines.
 */
export type YamlValue = string | number | boolean | null | YamlValue[] | { [k: string]: YamlValue };

function scalar(v: string | number | boolean | null): string {
  if (v === null) return 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`cannot write ${v} as YAML`);
    const s = String(v);
    // PyYAML (YAML 1.1) reads `1e-4` as a string: keep a mantissa with a dot
    return /e/.test(s) && !/\./.test(s.split('e')[0]!) ? s.replace('e', '.0e') : s;
  }
  const plainOk = /^[A-Za-z_/][A-Za-z0-9_./-]*$/.test(v) && !/^(true|false|null|yes|no|on|off|~)$/i.test(v);
  return plainOk ? v : JSON.stringify(v);
}

function emit(v: YamlValue, indent: string, out: string[]): void {
  if (Array.isArray(v)) {
    for (const item of v) {
      if (item !== null && typeof item === 'object' && !Array.isArray(item)) {
        const sub: string[] = [];
        emit(item, indent + '  ', sub);
        out.push(indent + '- ' + sub[0]!.slice(indent.length + 2), ...sub.slice(1));
      } else if (Array.isArray(item)) {
        throw new Error('nested lists are not supported');
      } else out.push(`${indent}- ${scalar(item)}`);
    }
    return;
  }
  if (v !== null && typeof v === 'object') {
    for (const [k, val] of Object.entries(v)) {
      if (k.startsWith('#')) {
        out.push(`${indent}# ${String(val)}`);
        continue;
      }
      if (Array.isArray(val)) {
        if (val.length === 0) out.push(`${indent}${k}: []`);
        else if (val.every((x) => x === null || typeof x !== 'object')) out.push(`${indent}${k}: [${val.map((x) => scalar(x as string)).join(', ')}]`);
        else {
          out.push(`${indent}${k}:`);
          emit(val, indent + '  ', out);
        }
      } else if (val !== null && typeof val === 'object') {
        out.push(`${indent}${k}:`);
        emit(val, indent + '  ', out);
      } else out.push(`${indent}${k}: ${scalar(val)}`);
    }
    return;
  }
  out.push(indent + scalar(v));
}

export function toYaml(v: YamlValue): string {
  const out: string[] = [];
  emit(v, '', out);
  return out.join('\n') + '\n';
}
