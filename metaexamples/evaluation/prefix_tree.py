"""The distinct prefixes of many token sequences as a tree, cut into chunks that a causal LM
runs in one forward each with tree attention.

Strings over a small alphabet share prefixes (all share the opening tag, most their first
symbols), and a causal LM's hidden state at a position depends only on the prefix up to it.
So each distinct prefix (a tree node) needs one forward position, not one per string. A chunk
is a run of nodes in preorder with the ancestors of its first node prepended (for a preorder
run, those are all the ancestors missing from it); each node attends to itself and its
ancestors, at position = its depth, which is exactly the context it has in every string
through it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class PrefixTree:
    token: list[int]           # per node: the token at the end of its prefix
    parent: list[int]          # per node: the node of the prefix one shorter (-1: first position)
    depth: list[int]           # per node: its position in the sequence (0-based)
    children: list[list[int]]  # per node
    paths: list[list[int]]     # per sequence: its node at every position


def build_tree(seqs: list[list[int]]) -> PrefixTree:
    tree = PrefixTree([], [], [], [], [])
    index: dict[tuple[int, int], int] = {}  # (parent, token) -> node
    for seq in seqs:
        node, path = -1, []
        for token in seq:
            child = index.get((node, token))
            if child is None:
                child = index[(node, token)] = len(tree.token)
                tree.token.append(token)
                tree.parent.append(node)
                tree.depth.append(len(path))
                tree.children.append([])
                if node >= 0:
                    tree.children[node].append(child)
            node = child
            path.append(node)
        tree.paths.append(path)
    return tree


def preorder(tree: PrefixTree, keep: list[bool]) -> list[int]:
    """The kept nodes in preorder. `keep` must be closed under parents (a kept node's parent
    is kept), so that a run of the result has its missing ancestors on one path."""
    roots = [n for n, p in enumerate(tree.parent) if p < 0]
    order, stack = [], roots[::-1]
    while stack:
        node = stack.pop()
        if keep[node]:
            order.append(node)
            stack.extend(tree.children[node][::-1])
    return order


@dataclass
class Chunk:
    nodes: list[int]    # ancestors of the run, then the run
    n_context: int      # how many of `nodes` are prepended ancestors (computed in earlier chunks)
    parent_at: list[int]  # per entry: the index of its parent in `nodes` (-1: none)


def chunks(tree: PrefixTree, order: list[int], size: int) -> list[Chunk]:
    out = []
    for start in range(0, len(order), size):
        run = order[start:start + size]
        ancestors, node = [], tree.parent[run[0]]
        while node >= 0:
            ancestors.append(node)
            node = tree.parent[node]
        nodes = ancestors[::-1] + run
        at = {n: i for i, n in enumerate(nodes)}
        out.append(Chunk(nodes, len(ancestors), [at.get(tree.parent[n], -1) for n in nodes]))
    return out


def forward_inputs(tree: PrefixTree, group: list[Chunk], additive: torch.dtype | None) -> dict[str, torch.Tensor]:
    """input_ids, position_ids and a 4D attention mask [chunks, 1, L, L] for chunks right-padded
    to one length L (a padding entry attends only to itself). The mask is boolean (True: may
    attend; sdpa's own format, whatever dtype autocast gives the queries) or, with `additive`,
    0 / that dtype's minimum (what eager attention adds to its scores)."""
    width = max(len(c.nodes) for c in group)
    ids = np.zeros((len(group), width), dtype=np.int64)
    pos = np.zeros((len(group), width), dtype=np.int64)
    allowed = np.zeros((len(group), width, width), dtype=bool)
    for b, chunk in enumerate(group):
        n = len(chunk.nodes)
        ids[b, :n] = [tree.token[x] for x in chunk.nodes]
        pos[b, :n] = [tree.depth[x] for x in chunk.nodes]
        rows = allowed[b]
        for i, p in enumerate(chunk.parent_at):  # parents come first: copy the parent's row
            if p >= 0:
                rows[i] = rows[p]
            rows[i, i] = True
        rows[np.arange(n, width), np.arange(n, width)] = True
    mask = torch.from_numpy(allowed)
    if additive is not None:
        mask = torch.zeros(allowed.shape, dtype=additive).masked_fill_(~mask, torch.finfo(additive).min)
    return {"input_ids": torch.from_numpy(ids), "position_ids": torch.from_numpy(pos),
            "attention_mask": mask[:, None]}
