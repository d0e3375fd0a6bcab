// Release attestations: an in-toto Statement v1 inside a DSSE envelope, signed with Ed25519 here (the release key
// lives on workers); opening and checking them is pure and shared (policy/attestation.ts).
import { sign, type KeyObject } from 'node:crypto';
import { PAYLOAD_TYPE, pae, type Envelope, type Statement } from '../policy/attestation.js';
import { keyId, rawPublicKey } from './keys.js';

export {
  LEGACY_PREDICATE_TYPE,
  PAYLOAD_TYPE,
  PREDICATE_TYPE,
  openEnvelope,
  pae,
  type Envelope,
  type Statement,
} from '../policy/attestation.js';

export function signEnvelope(statement: Statement, key: KeyObject): Envelope {
  const payload = Buffer.from(JSON.stringify(statement), 'utf8');
  const sig = sign(null, pae(PAYLOAD_TYPE, payload), key).toString('base64');
  return {
    payloadType: PAYLOAD_TYPE,
    payload: payload.toString('base64'),
    signatures: [{ keyid: keyId(rawPublicKey(key)), sig }],
  };
}
