/** What is said when speech was heard but was not one of the node's questions (out of the grammar). */
export const NOT_UNDERSTOOD = 'Sorry, I did not understand. Ask me how the hive is, whether it will swarm, or how heavy it is.';
