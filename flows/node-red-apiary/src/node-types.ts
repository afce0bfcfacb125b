/** The node types this palette registers, in palette order (the editor HTML defines the same). */
export const NODE_TYPES = ['apiary-node', 'apiary-reading', 'apiary-model', 'apiary-decision', 'apiary-command', 'apiary-shared', 'apiary-mesh'] as const;
