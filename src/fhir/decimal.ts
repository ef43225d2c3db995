/**
 * A FHIR decimal that remembers its original text, so `4.0` and `123.0` print as loaded (HAPI echoes the decimal
 * text it stored). `JSON.stringify` sees a plain number via `toJSON()`; the HAPI pretty printer prints `.text`.
 */
export class FhirDecimal {
  readonly value: number;
  constructor(readonly text: string) {
    if (!/^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/.test(text)) {
      throw new Error(`FhirDecimal: not a JSON number: ${JSON.stringify(text)}`);
    }
    this.value = Number(text);
  }
  /** Build from a number with a fixed number of decimals, e.g. `FhirDecimal.fixed(4, 1)` → `4.0`. */
  static fixed(value: number, decimals: number): FhirDecimal {
    return new FhirDecimal(value.toFixed(decimals));
  }
  toJSON(): number {
    return this.value;
  }
  valueOf(): number {
    return this.value;
  }
  toString(): string {
    return this.text;
  }
}
