// For the measurement scripts: the data-plane port a tidegate child reports in its
// `started` log line (it listens on port 0, so only the log says which port it got).
export function startedPort(child) {
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      const m = /"event":"started","port":(\d+)/.exec(buf);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`tidegate exited (${code}) before it started`)));
  });
}
