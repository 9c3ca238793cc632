// Owns what this device refuses to believe of records from peers about its own writes: no record may cover (or
// hold) a dot of this device's current writer beyond the highest counter it issued. Only the writer knows that
// counter exactly; such coverage never happened, so it is cut off before the record reaches the core.
import type { SyncMessage } from '../core/anti-entropy.js';
import type { KeyedRecord, Message } from '../core/messages.js';
import { type VersionedRecord, withoutUnissued } from '../core/record.js';

/** The message with every record cut to what `actor` really issued (the message itself when nothing changes). */
export function guardMessage(msg: Message, actor: string, issuedMax: number): Message {
  switch (msg.type) {
    case 'write':
    case 'repair': {
      const record = withoutUnissued(msg.record, actor, issuedMax);
      return record === msg.record ? msg : { ...msg, record };
    }
    case 'readReply': {
      if (msg.record === undefined) return msg;
      const record = withoutUnissued(msg.record, actor, issuedMax);
      return record === msg.record ? msg : { ...msg, record };
    }
    case 'transfer': {
      const records = guardRecords(msg.records, actor, issuedMax);
      return records === msg.records ? msg : { ...msg, records };
    }
    default:
      return msg;
  }
}

/** The sync message with every record cut to what `actor` really issued. */
export function guardSyncMessage(msg: SyncMessage, actor: string, issuedMax: number): SyncMessage {
  if (msg.type !== 'push' && msg.type !== 'segmentsReply') return msg;
  const records = guardRecords(msg.records, actor, issuedMax);
  return records === msg.records ? msg : { ...msg, records };
}

function guardRecords(records: readonly KeyedRecord[], actor: string, issuedMax: number): readonly KeyedRecord[] {
  let out: KeyedRecord[] | undefined;
  records.forEach((r, i) => {
    const record: VersionedRecord = withoutUnissued(r.record, actor, issuedMax);
    if (record === r.record) return;
    out ??= [...records];
    out[i] = { key: r.key, record };
  });
  return out ?? records;
}
