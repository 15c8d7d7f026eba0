"""The demo's picture of the quantum graph: one box per exposure, read at a glance."""

from __future__ import annotations

__all__ = ["ExposureDotVisualizer", "write_grouped_dot"]

import html
import uuid
from collections import defaultdict
from pathlib import Path
from typing import IO

from lsst.pipe.base.pipeline_graph import NodeType
from lsst.pipe.base.quantum_graph import PredictedQuantumGraph
from lsst.pipe.base.quantum_graph.visualization import QuantumGraphDotVisualizer

_NO_EXPOSURE = "no exposure"


class ExposureDotVisualizer(QuantumGraphDotVisualizer):
    """pipe_base's GraphViz writer, with every exposure's quanta and datasets in one cluster.

    pipe_base draws each quantum and dataset with its UUID and full data ID; a dark-subtraction graph is
    then a single row of disconnected boxes (25 000 pt wide for 24 quanta).  Here each exposure is a
    cluster labelled with its id, nodes show only the task or dataset type and the detector, the runs
    are named once in the title, and clusters are stacked (invisible edges) so the picture is a grid.
    """

    def render_quantum(self, quantum_id: uuid.UUID, data, is_bipartite: bool) -> str:  # noqa: D102
        return self._render_node(
            self._make_node_id(quantum_id), "quantum", [html.escape(data["task_label"]), *_short_id(data)]
        )

    def render_dataset(self, dataset_id: uuid.UUID, data) -> str:  # noqa: D102
        return self._render_node(
            self._make_node_id(dataset_id),
            "dataset",
            [html.escape(data["dataset_type_name"]), *_short_id(data)],
        )

    def write_bipartite(self, qg: PredictedQuantumGraph, stream: IO[str]) -> None:
        """Write the graph with one cluster per exposure and the runs in its title.

        Parameters
        ----------
        qg : `lsst.pipe.base.quantum_graph.PredictedQuantumGraph`
            Quantum graph to draw.
        stream : `typing.IO`
            Where the DOT text goes.
        """
        xgraph = qg.bipartite_xgraph
        clusters: dict[object, list[uuid.UUID]] = defaultdict(list)
        runs: dict[str, set[str]] = {"input": set(), "output": set()}
        quanta = 0
        for node_id, data in xgraph.nodes.items():
            if data["pipeline_node"].key.node_type is NodeType.TASK:
                quanta += 1
            else:
                produced = any(True for _ in xgraph.predecessors(node_id))
                runs["output" if produced else "input"].add(data["run"])
            clusters[self._exposure_of(xgraph, node_id)].append(node_id)

        print(self.render_header(qg, is_bipartite=True), file=stream)
        title = (
            f"{quanta} quanta; inputs from {', '.join(sorted(runs['input']))}; "
            f"outputs into {', '.join(sorted(runs['output']))}"
        )
        print(
            f'label="{html.escape(title)}"; labelloc="t"; fontname="Monospace"; fontsize="18";', file=stream
        )
        order = sorted(clusters, key=lambda e: (e == _NO_EXPOSURE, str(e)))
        for n, exposure in enumerate(order):
            label = exposure if exposure == _NO_EXPOSURE else f"exposure {exposure}"
            print(f'subgraph cluster_{n} {{ label="{label}"; fontsize="16"; style="rounded";', file=stream)
            # dot places a cluster's disconnected parts right to left in the order they are declared.
            for node_id in sorted(clusters[exposure], key=lambda n: _sort_key(xgraph, n), reverse=True):
                data = xgraph.nodes[node_id]
                if data["pipeline_node"].key.node_type is NodeType.TASK:
                    print(self.render_quantum(node_id, data, is_bipartite=True), file=stream)
                else:
                    print(self.render_dataset(node_id, data), file=stream)
            print("}", file=stream)
        for a, b, edge_data in xgraph.edges(data=True):
            print(self.render_edge(a, b, edge_data), file=stream)
        # Stack the clusters: an invisible edge from a node of each to a node of the next.
        for upper, lower in zip(order, order[1:], strict=False):
            # From an output (bottom row) of the first detector to an input (top row) of the next cluster's.
            last = min(clusters[upper], key=lambda n: (xgraph.out_degree(n), _sort_key(xgraph, n)))
            first = min(clusters[lower], key=lambda n: (xgraph.in_degree(n), _sort_key(xgraph, n)))
            print(
                f'"{self._make_node_id(last)}" -> "{self._make_node_id(first)}" [style="invis"];', file=stream
            )
        print(self.render_footer(qg, is_bipartite=True), file=stream)

    @staticmethod
    def _exposure_of(xgraph, node_id: uuid.UUID) -> object:
        """Return the exposure of a node, or of the first quantum that reads it (a dark has none)."""
        data_id = xgraph.nodes[node_id]["data_id"]
        if "exposure" in data_id.dimensions.names:
            return data_id["exposure"]
        for consumer in xgraph.successors(node_id):
            consumer_id = xgraph.nodes[consumer]["data_id"]
            if "exposure" in consumer_id.dimensions.names:
                return consumer_id["exposure"]
        return _NO_EXPOSURE


def _sort_key(xgraph, node_id: uuid.UUID) -> tuple[str, ...]:
    """Order nodes by data ID (detector 1 to 6, left to right), then by name."""
    data = xgraph.nodes[node_id]
    values = tuple(f"{value:>12}" for value in data["data_id"].required.values())
    return (*values, data.get("task_label") or data.get("dataset_type_name") or "")


def _short_id(data) -> list[str]:
    return [
        f"{key} = {value}"
        for key, value in data["data_id"].required.items()
        if key not in ("instrument", "exposure")
    ]


def write_grouped_dot(qgraph_file: Path, dot_file: Path) -> Path:
    """Draw a saved quantum graph (``pipetask qgraph --save-qgraph``) as DOT, grouped by exposure.

    Parameters
    ----------
    qgraph_file : `pathlib.Path`
        The ``.qg`` file.
    dot_file : `pathlib.Path`
        The DOT file to write.

    Returns
    -------
    dot_file : `pathlib.Path`
        The file written.
    """
    qg = PredictedQuantumGraph.read_execution_quanta(qgraph_file)
    with open(dot_file, "w") as stream:
        ExposureDotVisualizer().write_bipartite(qg, stream)
    return dot_file
