/** `--config` and `--to` take an etcd URL where they would take a file: etcd:// or etcds:// (TLS). */
export function isEtcdUrl(s: string): boolean {
  return s.startsWith('etcd://') || s.startsWith('etcds://');
}
