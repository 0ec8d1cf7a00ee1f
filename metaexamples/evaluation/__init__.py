"""Evaluation machinery every task reuses: the problem and verdict types (problems), rollouts
(k verified samples per problem), batched exact scoring (scoring, prefix_tree), the left-padded
sampler (sampling), decoding presets and processors (decoding), shared metrics (metrics), set
evaluation (sets), statistics (stats) and plots. Each task's evaluation stages live in its own
package."""
