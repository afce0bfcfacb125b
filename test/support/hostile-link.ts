/** A hostile (but trusted) node speaking through its own, real link: what a modified node could send. */
import { describeBlobFile, type BlobDescriptor } from '../../runtime/mesh/blob-descriptor.js';
import { encodeMeshMessage, type MeshHeader } from '../../runtime/mesh/mesh-protocol.js';
import type { PeerLink } from '../../runtime/mesh/peer-link.js';
import { waitFor, type TestMeshNode } from './mesh-node.js';

/** Sends a raw mesh message from `from` to `to` over from's link (waiting while the link is busy). */
export async function sendOverLink(from: TestMeshNode, to: TestMeshNode, header: MeshHeader, lines: Buffer[] = []): Promise<void> {
  const link = (from.mesh as unknown as { links: Map<string, PeerLink> }).links.get(to.node.nodeId);
  if (!link) throw new Error(`${from.name} has no link to ${to.name}`);
  await waitFor(() => link.send(encodeMeshMessage(header, lines)), 10_000, () => `link ${from.name} -> ${to.name} stays busy`);
}

/** Sends raw bytes as a mesh message from `from` to `to` over from's link: for messages no honest encoder builds. */
export async function sendRawOverLink(from: TestMeshNode, to: TestMeshNode, payload: Buffer): Promise<void> {
  const link = (from.mesh as unknown as { links: Map<string, PeerLink> }).links.get(to.node.nodeId);
  if (!link) throw new Error(`${from.name} has no link to ${to.name}`);
  await waitFor(() => link.send(payload), 10_000, () => `link ${from.name} -> ${to.name} stays busy`);
}

/**
 * Makes `liar` answer requests for the blob `claimed` names with the chunks
 * of `file` (another file): what a modified node could do. Its own checks
 * pass, since it checks the chunks against a descriptor of `file` filed
 * under the claimed sha256.
 */
export async function serveLying(liar: TestMeshNode, claimed: BlobDescriptor, file: string): Promise<void> {
  const own = await describeBlobFile(file, claimed.chunkBytes);
  (liar.mesh.blobs as unknown as { served: Map<string, { descriptor: BlobDescriptor; file: string }> }).served
    .set(claimed.sha256, { descriptor: { ...own, sha256: claimed.sha256 }, file });
}
