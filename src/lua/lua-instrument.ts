// The runaway check compiled into a script, so that no instruction hook runs until a
// script has looped for a while. Lua 5.4 runs every instruction through its hook
// dispatcher while any count hook is set (1.5–2× the time of plain Lua here), and a
// script can only run away by jumping back: a loop (while, for, repeat), a goto, or a
// call (recursion, a callback from table.sort or gsub). So each loop body, each
// function body and each goto gets a countdown, and the call turns the count hook on
// (lua-host.ts) once the countdown of some function runs out; straight-line code
// between two checks is bounded by the script's length.
//
// The script becomes a function made by a wrapper chunk, on the same lines (the
// wrapper's head joins line 1, its `end` is a line of its own after the last), so
// error messages keep their line numbers:
//
//   local __tidegate_tick = ... return function(...) local __tidegate_n = K <line 1>
//   ... a loop: while c do __tidegate_n = __tidegate_n - 1 if __tidegate_n < 0 then
//       __tidegate_n = __tidegate_tick() end <body> end
//   end
//
// Functions made by a call keep that call's countdown (their upvalue) when a later call
// runs them: it is at most K checks from the tick, so the hook still comes in time.
// The rewrite needs only the tokens: it never inserts after a label (a label ending a
// block may be jumped to past a local), only at the start of a block or before a goto.

/** The prefix a script cannot use for its own names (its locals would shadow the check's). */
export const RESERVED_PREFIX = '__tidegate_';

const CHECK = ' __tidegate_n = __tidegate_n - 1 if __tidegate_n < 0 then __tidegate_n = __tidegate_tick() end ';

/**
 * The script's source with the checks, as the body of a function returned by the
 * chunk (call it with the tick function to get the script), or null when the text does
 * not tokenise (unterminated string or comment: the compiler reports those).
 * `countdown` is K, the checks a call runs before it ticks.
 */
export function instrument(source: string, countdown: number): string | null {
  const out: string[] = [`local __tidegate_tick = ... return function(...) local __tidegate_n = ${countdown} `];
  const n = source.length;
  let last = 0; // source copied up to here
  let i = 0;
  /** after `function`: 1 waiting for its `(`, 2 inside its parameters */
  let fn = 0;
  const insertAt = (at: number, text: string): void => {
    out.push(source.slice(last, at), text);
    last = at;
  };
  while (i < n) {
    const c = source.charCodeAt(i);
    if (c === 0x2d && source.charCodeAt(i + 1) === 0x2d) {
      // -- comment: long (--[[ ]], --[==[ ]==]) or to the end of the line
      const end = longBracketEnd(source, i + 2);
      if (end === -1) return null;
      if (end > 0) i = end;
      else {
        const nl = source.indexOf('\n', i);
        i = nl < 0 ? n : nl;
      }
      continue;
    }
    if (c === 0x22 || c === 0x27) {
      // "..." or '...': a backslash escapes the next character (a newline included)
      let j = i + 1;
      for (;;) {
        if (j >= n) return null;
        const d = source.charCodeAt(j);
        if (d === 0x5c) j += 2;
        else if (d === c) break;
        else if (d === 0x0a) return null;
        else j++;
      }
      i = j + 1;
      continue;
    }
    if (c === 0x5b) {
      // [[ long string ]], or an index bracket
      const end = longBracketEnd(source, i);
      if (end === -1) return null;
      i = end > 0 ? end : i + 1;
      continue;
    }
    if (isNameStart(c)) {
      let j = i + 1;
      while (j < n && isNameChar(source.charCodeAt(j))) j++;
      const word = source.slice(i, j);
      if (word === 'do' || word === 'repeat') insertAt(j, CHECK);
      else if (word === 'goto') insertAt(i, CHECK);
      else if (word === 'function') fn = 1;
      i = j;
      continue;
    }
    if (isDigit(c) || (c === 0x2e && isDigit(source.charCodeAt(i + 1)))) {
      // a number: digits, letters, dots, and a sign right after an exponent letter
      let j = i + 1;
      while (j < n) {
        const d = source.charCodeAt(j);
        if (isNameChar(d) || d === 0x2e) j++;
        else if ((d === 0x2b || d === 0x2d) && isExponent(source.charCodeAt(j - 1))) j++;
        else break;
      }
      i = j;
      continue;
    }
    if (c === 0x28 && fn === 1) fn = 2;
    else if (c === 0x29 && fn === 2) {
      fn = 0;
      insertAt(i + 1, CHECK);
    }
    i++;
  }
  out.push(source.slice(last), '\nend');
  return out.join('');
}

/**
 * At `at` a `[`: the index after the long bracket `[==[ … ]==]` that starts there,
 * 0 when it is not one (a plain `[`), -1 when it is never closed.
 */
function longBracketEnd(s: string, at: number): number {
  if (s.charCodeAt(at) !== 0x5b) return 0;
  let j = at + 1;
  while (s.charCodeAt(j) === 0x3d) j++;
  if (s.charCodeAt(j) !== 0x5b) return 0;
  const close = `]${'='.repeat(j - at - 1)}]`;
  const end = s.indexOf(close, j + 1);
  return end < 0 ? -1 : end + close.length;
}

function isNameStart(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function isNameChar(c: number): boolean {
  return isNameStart(c) || isDigit(c);
}

function isExponent(c: number): boolean {
  return c === 0x65 || c === 0x45 || c === 0x70 || c === 0x50;
}
