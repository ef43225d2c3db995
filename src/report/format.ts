/** Number formatting shared by the Markdown and HTML renderers. */
export const pct = (x: number, digits = 1): string => `${(x * 100).toFixed(digits)}%`;
export const signedPct = (x: number, digits = 1): string => `${x > 0 ? '+' : x < 0 ? '−' : '±'}${Math.abs(x * 100).toFixed(digits)} pp`;
export const signed = (n: number): string => (n > 0 ? `+${n}` : n < 0 ? `−${-n}` : '0');
export const num = (x: number, digits = 1): string => x.toFixed(digits);
/** p-values: 4 significant digits, scientific below 1e-4. */
export const pval = (p: number): string => (p === 1 ? '1' : p >= 1e-4 ? p.toPrecision(4) : p.toExponential(3));
export const clip = (s: string, n: number): string => (s.length > n ? `${s.slice(0, n)}… (${s.length - n} more characters)` : s);
