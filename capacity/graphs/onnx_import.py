"""ONNX models as GraphSpecs: the structure becomes a spec, the weights a state dict.

The translation, node by node (opset 7 and later, default domain only):
- Conv, ConvTranspose, BatchNormalization and LayerNormalization whose weights are initializers
  become layers (torch modules); so do Gemm and MatMul with a 2-D initializer as their weight (a
  Linear on the last axis; a MatMul's bias Add, when it is the only reader, joins the Linear).
  Every weight that feeds them is a trainable parameter; BatchNorm's mean and variance are buffers.
- Other initializers: floating ones with two or more values (position embeddings, class tokens)
  are trainable free parameters; scalars and integers (shapes, axes) are inline constants, as are
  Constant nodes. A PReLU slope is trainable whatever its size.
- Everything computed from constants alone is folded at import; Identity nodes disappear.
- Every other operator must be in the allow-list (ops.py), or the import is refused naming it.

Nothing in the file is executed: this reads protobuf fields, after onnx_wire.py has checked the
file's outline, and every value is checked (dtype, finiteness, shape) as it is read. Shapes are
found by running each converted node on the meta device as it is made, so a node that cannot run
is refused by name, before any real computation.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from effcap.capacity.errors import InputError
from effcap.capacity.graphs.export_call import ONNX_EXPORT_CALL
from effcap.capacity.graphs.network import (
    GraphNetwork,
    GraphRunError,
    Step,
    compile_node,
    data_shapes,
    reserved_root_names,
    run_step,
)
from effcap.capacity.graphs.onnx_wire import OnnxLimits, WireError, scan_onnx
from effcap.capacity.graphs.ops import OPERATORS, Operator, RunContext, bounded, same_pads
from effcap.capacity.graphs.spec import (
    MAX_CONSTANT_BYTES,
    MAX_NAME_LENGTH,
    MAX_NODES,
    GraphConstant,
    GraphNode,
    GraphParameter,
    GraphSpec,
)

MIN_OPSET, MAX_OPSET = 7, 23


@dataclass(frozen=True)
class ImportedGraph:
    spec: GraphSpec
    state_dict: dict[str, torch.Tensor]
    opset: int
    producer: str
    onnx_nodes: int
    # The batch size the graph fixes for its input, or None when the batch axis is symbolic.
    export_batch: int | None
    # What a reader of the report should know about the translation (shared weights, a folded BatchNorm, ...).
    notes: tuple[str, ...] = ()


class _Refusal(Exception):
    """Raised inside the converter; turned into InputError naming the model field and the node."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def read_onnx_model(path: Path | str, limits: OnnxLimits = OnnxLimits(), field: str = "model"):
    """The ModelProto of a file, after its outline passed the limits (onnx_wire.scan_onnx)."""
    import onnx
    from google.protobuf.message import DecodeError

    data = Path(path).read_bytes()
    try:
        scan_onnx(data, limits)
    except WireError as error:
        raise InputError(field, str(error), reason="INVALID_ONNX") from None
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as error:
        raise InputError(field, f"not a valid ONNX protobuf: {str(error)[:200]}", reason="INVALID_ONNX") from None
    return model


def import_onnx(model, field: str = "model") -> ImportedGraph:
    """Translate a parsed ONNX ModelProto; InputError names the node and what is wrong with it."""
    try:
        return _Converter(model).convert()
    except _Refusal as refusal:
        raise InputError(field, str(refusal), reason=refusal.reason) from None
    except GraphRunError as error:
        raise InputError(field, f"the graph cannot run: {error}", reason="INVALID_ONNX") from None


# ---------------------------------------------------------------- reading protobuf values

_FLOAT_TYPES = {1, 10, 11, 16}  # float, float16, double, bfloat16
_INT_TYPES = {2, 3, 4, 5, 6, 7, 12, 13}  # (u)int8/16/32/64
_BOOL = 9


def _tensor_array(tensor, where: str) -> np.ndarray:
    from onnx import numpy_helper

    if tensor.data_type not in _FLOAT_TYPES | _INT_TYPES | {_BOOL}:
        raise _Refusal(
            "INVALID_ONNX", f"{where}: tensor data type {tensor.data_type} is not supported (floats, integers, bool)"
        )
    if len(tensor.dims) > 8 or any(d < 0 for d in tensor.dims):
        raise _Refusal("INVALID_ONNX", f"{where}: dims {list(tensor.dims)[:10]} are not a valid shape")
    try:
        array = numpy_helper.to_array(tensor)
    except Exception as error:  # noqa: BLE001 - any decoding failure of client bytes is a bad input
        raise _Refusal("INVALID_ONNX", f"{where}: unreadable tensor data: {str(error)[:200]}") from None
    if tensor.data_type in _FLOAT_TYPES:
        array = np.asarray(array, dtype=np.float32)
        if not np.isfinite(array).all():
            raise _Refusal(
                "CHECKPOINT_NOT_FINITE", f"{where}: contains NaN or infinite values, or values beyond float32's range"
            )
        return array
    return np.asarray(array, dtype=np.bool_ if tensor.data_type == _BOOL else np.int64)


def _attributes(node, where: str) -> dict[str, Any]:
    from onnx import AttributeProto

    out: dict[str, Any] = {}
    for attribute in node.attribute:
        kind, name = attribute.type, attribute.name
        if kind == AttributeProto.INT:
            out[name] = int(attribute.i)
        elif kind == AttributeProto.FLOAT:
            out[name] = float(attribute.f)
        elif kind == AttributeProto.STRING:
            out[name] = attribute.s.decode("utf-8", "replace")[:64]
        elif kind == AttributeProto.INTS:
            out[name] = tuple(int(v) for v in attribute.ints)
        elif kind == AttributeProto.FLOATS:
            out[name] = tuple(float(v) for v in attribute.floats)
        elif kind == AttributeProto.TENSOR:
            out[name] = _tensor_array(attribute.t, f"{where} attribute {name!r}")
        else:
            raise _Refusal(
                "UNSUPPORTED_OPERATOR",
                f"{where}: attribute {name!r} of type {AttributeProto.AttributeType.Name(kind)} (subgraphs and the "
                "like) is not supported",
            )
        if isinstance(out[name], (float, tuple)) and not np.isfinite(np.asarray(out[name], dtype=np.float64)).all():
            raise _Refusal("INVALID_ONNX", f"{where}: attribute {name!r} is not finite")
    return out


# ---------------------------------------------------------------- names


def _sanitize(name: str) -> str:
    parts = [re.sub(r"[^A-Za-z0-9_]", "_", part) for part in re.split(r"[./]", name)]
    return ".".join(part for part in parts if part)[:200] or "node"


class _Names:
    """Unique dotted paths for layers and parameters, none nested inside another's leaf."""

    def __init__(self) -> None:
        self._leaves: set[str] = set()
        self._scopes: set[str] = set()
        self._reserved = reserved_root_names()

    def claim(self, wanted: str) -> str:
        base = _sanitize(wanted)
        if not self._nestable(base):
            base = base.replace(".", "_")
        candidate, suffix = base, 2
        while not self._free(candidate):
            candidate, suffix = f"{base}_{suffix}", suffix + 1
        parts = candidate.split(".")
        self._leaves.add(candidate)
        self._scopes.update(".".join(parts[:i]) for i in range(1, len(parts)))
        return candidate

    def _nestable(self, path: str) -> bool:
        parts = path.split(".")
        return parts[0] not in self._reserved and not any(
            ".".join(parts[:i]) in self._leaves for i in range(1, len(parts))
        )

    def _free(self, path: str) -> bool:
        return self._nestable(path) and path not in self._leaves and path not in self._scopes


def _layer_path(weight_name: str, node_name: str, op_type: str) -> str:
    """A layer's path: its weight's name without ".weight" (torch's own module path), else its node's scope."""
    if weight_name.endswith(".weight") and len(weight_name) > len(".weight"):
        return weight_name[: -len(".weight")]
    return module_scope(node_name, op_type) or op_type.lower()


def module_scope(node_name: str, op_type: str) -> str:
    """The torch module path in an exporter's node name: "/blocks.0/attn/qkv/MatMul" → "blocks.0.attn.qkv".

    The TorchScript exporter names a node by the module scopes it ran in, each either relative to the one
    before ("attn", then "qkv") or the full path again ("layer1", then "layer1.0"), and ends with the op."""
    parts = [part for part in node_name.split("/") if part]
    if parts and parts[-1].split("_")[0] == op_type:
        parts = parts[:-1]
    path: list[str] = []
    for part in parts:
        if path and part.startswith(".".join(path) + "."):
            path = part.split(".")
        else:
            path += part.split(".")
    return ".".join(path)


# ---------------------------------------------------------------- the converter


@dataclass
class _Converter:
    model: Any
    opset: int = 0
    initializers: dict[str, np.ndarray] = field(default_factory=dict)
    constants: dict[str, np.ndarray] = field(default_factory=dict)  # inline, known at import
    parameters: dict[str, GraphParameter] = field(default_factory=dict)  # by value name
    state: dict[str, torch.Tensor] = field(default_factory=dict)
    nodes: list[GraphNode] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)
    consumers: dict[str, list[tuple[Any, int]]] = field(default_factory=lambda: defaultdict(list))
    # How many layers took each initializer as a weight (each gets its own copy).
    layer_weights: dict[str, int] = field(default_factory=dict)
    # Things the report should say about the import (shared weights, a folded BatchNorm, a softmax output).
    notes: list[str] = field(default_factory=list)
    # The initializers Conv layers took (weight, bias), by which a folded BatchNorm is recognised.
    conv_initializers: list[str] = field(default_factory=list)
    names: _Names = field(default_factory=_Names)
    # The meta-device probe: every value so far, which are static, and the probe's layers.
    values: dict[str, Any] = field(default_factory=dict)
    static: set[str] = field(default_factory=set)
    layers: dict[str, nn.Module] = field(default_factory=dict)
    context: RunContext = RunContext(False, torch.device("meta"), torch.float32)
    # The ONNX node being converted, and bias Adds already fused into the Linear before them.
    current: Any = None
    fused: set[int] = field(default_factory=set)

    def convert(self) -> ImportedGraph:
        graph = self.model.graph
        self.opset = self._default_opset()
        for index, tensor in enumerate(graph.initializer):
            if tensor.name in self.initializers:
                raise _Refusal("INVALID_ONNX", f"initializer {tensor.name[:100]!r} is defined twice")
            self.initializers[tensor.name] = _tensor_array(tensor, f"initializer {index} ({tensor.name[:100]!r})")
        input_name, input_shape, export_batch = self._network_input()
        output_name = self._network_output()
        for node in graph.node:
            for position, name in enumerate(node.input):
                self.consumers[name].append((node, position))
        for name in (output.name for output in graph.output):
            self.consumers[name].append((None, 0))
        probe_batch = export_batch or 2
        self.values[input_name] = torch.empty(probe_batch, *input_shape, device="meta")
        for index, node in enumerate(graph.node):
            where = f"node {index} ({node.name[:100]!r}, {node.op_type})"
            try:
                self._convert_node(node, where)
            except GraphRunError as error:
                raise _Refusal("INVALID_ONNX", f"{where} cannot run: {str(error).split(' failed: ', 1)[-1]}") from None
            except (RuntimeError, ValueError, IndexError, TypeError, KeyError, ArithmeticError, MemoryError) as error:
                # The file is data: whatever in it makes a node impossible to build or run is a bad input, named.
                raise _Refusal(
                    "INVALID_ONNX", f"{where} cannot be translated: {type(error).__name__}: {str(error)[:300]}"
                ) from None
        output = self._resolve(output_name)
        try:
            spec = self._spec(input_name, input_shape, output, probe_batch)
        except (RuntimeError, ValueError, IndexError, TypeError, KeyError, ArithmeticError) as error:
            raise _Refusal(
                "INVALID_ONNX", f"the translated graph is not valid: {type(error).__name__}: {str(error)[:300]}"
            ) from None
        producer = f"{self.model.producer_name} {self.model.producer_version}".strip()[:100]
        notes = (*self.notes, *_export_notes(spec, self.conv_initializers, self.layer_weights, self.values))
        return ImportedGraph(spec, self.state, self.opset, producer, len(graph.node), export_batch, notes)

    # ------------------------------------------------------------ graph interface

    def _default_opset(self) -> int:
        versions = {entry.domain: entry.version for entry in self.model.opset_import}
        opset = versions.get("", versions.get("ai.onnx"))
        if opset is None or not MIN_OPSET <= opset <= MAX_OPSET:
            raise _Refusal(
                "UNSUPPORTED_OPSET",
                f"the default-domain opset is {opset}; opsets {MIN_OPSET} to {MAX_OPSET} are supported",
            )
        return int(opset)

    def _network_input(self) -> tuple[str, tuple[int, ...], int | None]:
        inputs = [value for value in self.model.graph.input if value.name not in self.initializers]
        if len(inputs) != 1:
            raise _Refusal(
                "UNSUPPORTED_GRAPH",
                f"the graph has {len(inputs)} inputs besides its weights; effcap audits networks of one input",
            )
        value = inputs[0]
        tensor_type = value.type.tensor_type
        if tensor_type.elem_type != 1:
            raise _Refusal(
                "UNSUPPORTED_GRAPH",
                f"input {value.name[:100]!r} has element type {tensor_type.elem_type}; a float32 input is needed",
            )
        dims = list(tensor_type.shape.dim)
        if len(dims) < 2 or len(dims) > 5:
            raise _Refusal(
                "UNSUPPORTED_GRAPH",
                f"input {value.name[:100]!r} has rank {len(dims)}; (batch, features...) of rank 2 to 5 is needed",
            )
        shape = []
        for axis, dim in enumerate(dims[1:], start=1):
            if not dim.HasField("dim_value") or not 1 <= dim.dim_value <= 1 << 24:
                raise _Refusal(
                    "UNSUPPORTED_GRAPH",
                    f"input {value.name[:100]!r} axis {axis} has no fixed size; export with a fixed example shape "
                    "(only the batch axis may vary)",
                )
            shape.append(int(dim.dim_value))
        batch = int(dims[0].dim_value) if dims[0].HasField("dim_value") and dims[0].dim_value > 0 else None
        if len(value.name) > MAX_NAME_LENGTH:
            raise _Refusal("INVALID_ONNX", "the input's name is too long")
        return value.name, tuple(shape), batch

    def _network_output(self) -> str:
        outputs = list(self.model.graph.output)
        if len(outputs) != 1:
            raise _Refusal(
                "UNSUPPORTED_GRAPH",
                f"the graph has {len(outputs)} outputs; effcap audits networks with one output, the logits",
            )
        return outputs[0].name

    # ------------------------------------------------------------ values

    def _resolve(self, name: str) -> str:
        while name in self.aliases:
            name = self.aliases[name]
        return name

    def _value(self, name: str, where: str) -> str:
        """The spec's name for input `name`, classifying an initializer on its first use."""
        name = self._resolve(name)
        if not name or name in self.values:
            return name
        if name not in self.initializers:
            raise _Refusal("INVALID_ONNX", f"{where}: input {name[:100]!r} is not computed before it is used")
        array = self.initializers[name]
        if self._trainable(name, array):
            key = self.names.claim(self._parameter_name(name))
            self.parameters[name] = GraphParameter(
                value=name[:MAX_NAME_LENGTH], key=key, shape=array.shape, fill=self._fill(name, array)
            )
            self.state[key] = torch.from_numpy(array.copy())
            self.values[name] = torch.empty(array.shape, device="meta")
        else:
            self._add_constant(name, array)
        return name

    def _trainable(self, name: str, array: np.ndarray) -> bool:
        if array.dtype != np.float32:
            return False
        uses = self.consumers.get(name, [])
        if any(
            node is not None and position in OPERATORS.get(node.op_type, _NO_OPERATOR).static_inputs
            for node, position in uses
        ):
            return False
        return array.size >= 2 or any(node is not None and node.op_type == "PRelu" for node, _ in uses)

    def _parameter_name(self, name: str) -> str:
        """A free parameter's state-dict name: its own, unless the exporter made one up ("onnx::PRelu_13"), when a
        PReLU slope is named as torch names it ("act.weight", from its node's module scope)."""
        readers = [node for node, _ in self.consumers.get(name, []) if node is not None]
        if name.startswith("onnx::") and len(readers) == 1 and readers[0].op_type == "PRelu":
            scope = module_scope(readers[0].name, "PRelu")
            return f"{scope}.weight" if scope else name
        return name

    def _fill(self, name: str, array: np.ndarray) -> float | None:
        """Fresh initialisation of a free parameter, by how it is used (see GraphParameter)."""
        readers = {node.op_type for node, _ in self.consumers.get(name, []) if node is not None}
        vector_like = sum(d > 1 for d in array.shape) <= 1
        if readers == {"PRelu"}:
            return 0.25  # torch.nn.PReLU's default
        if vector_like and readers and readers <= {"Mul", "Div"}:
            return 1.0  # a per-channel scale
        if vector_like and readers and readers <= {"Add", "Sub"}:
            return 0.0  # a per-channel shift
        return None

    def _add_constant(self, name: str, array: np.ndarray) -> None:
        self.constants[name] = array
        self.values[name] = array
        self.static.add(name)

    def _initializer(self, name: str, where: str, rank: int | None = None) -> np.ndarray | None:
        """An initializer that a layer takes as its weight (claimed: no one else may read it)."""
        name = self._resolve(name)
        if name not in self.initializers:
            return None
        array = self.initializers[name]
        if array.dtype != np.float32 or (rank is not None and array.ndim != rank):
            return None
        self.layer_weights[name] = self.layer_weights.get(name, 0) + 1
        return array

    # ------------------------------------------------------------ nodes

    def _convert_node(self, node, where: str) -> None:
        self.current = node
        if id(node) in self.fused:
            return None
        if node.domain not in ("", "ai.onnx"):
            raise _Refusal(
                "UNSUPPORTED_OPERATOR",
                f"{where}: operator {node.domain}::{node.op_type} is not supported (custom domain)",
            )
        if len(node.name) > MAX_NAME_LENGTH or any(len(n) > MAX_NAME_LENGTH for n in [*node.input, *node.output]):
            raise _Refusal("INVALID_ONNX", f"{where}: a name is longer than {MAX_NAME_LENGTH} characters")
        attrs = _attributes(node, where)
        op = node.op_type
        if op == "Constant":
            return self._constant(node, attrs, where)
        if op == "Identity":
            # Readers of the output read the input: a weight behind an Identity is still a layer's weight.
            source = self._resolve(node.input[0])
            self.aliases[node.output[0]] = source
            self.consumers[source] = [use for use in self.consumers[source] if use[0] is not node] + self.consumers.get(
                node.output[0], []
            )
            return None
        handler = _LAYER_HANDLERS.get(op)
        if handler is not None and handler(self, node, attrs, where):
            return None
        if op not in OPERATORS:
            raise _Refusal(
                "UNSUPPORTED_OPERATOR",
                f"{where}: operator {op} is not supported; supported: {', '.join(supported_operators())}",
            )
        self._functional(node, attrs, where)
        return None

    def _constant(self, node, attrs: dict[str, Any], where: str) -> None:
        for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
            if key in attrs:
                value = attrs[key]
                array = (
                    value
                    if isinstance(value, np.ndarray)
                    else np.asarray(value, dtype=np.float32 if "float" in key else np.int64)
                )
                return self._add_constant(node.output[0], array)
        raise _Refusal(
            "UNSUPPORTED_OPERATOR",
            f"{where}: a Constant without a numeric value (sparse or string constants are not supported)",
        )

    def _functional(self, node, attrs: dict[str, Any], where: str) -> None:
        op = node.op_type
        inputs = [self._value(name, where) for name in node.input]
        attrs = self._canonical_attributes(op, attrs, inputs, where)
        self._refuse_used_extra_outputs(node, where, keep=1 if op in ("Dropout", "MaxPool") else len(node.output))
        outputs = list(node.output) if op not in ("Dropout", "MaxPool") else [node.output[0]]
        # Dropout is random in training: never folded, even of a constant.
        self._emit(
            GraphNode(name=node.name, op=op, inputs=tuple(inputs), outputs=tuple(outputs), attributes=attrs),
            fold=op != "Dropout",
        )

    def _canonical_attributes(self, op: str, attrs: dict[str, Any], inputs: list[str], where: str) -> dict[str, Any]:
        """Attributes in the form ops.py reads: opset differences resolved, tensors made scalars."""
        if op == "ConstantOfShape":
            value = attrs.get("value", np.zeros(1, np.float32))
            if value.size != 1:
                raise _Refusal("INVALID_ONNX", f"{where}: ConstantOfShape's value must hold one number")
            attrs["value"] = int(value.reshape(-1)[0]) if value.dtype.kind in "iub" else float(value.reshape(-1)[0])
            if not np.isfinite(attrs["value"]):
                raise _Refusal(
                    "UNSUPPORTED_OPERATOR", f"{where}: ConstantOfShape with a non-finite value is not supported"
                )
        if op in ("Softmax", "LogSoftmax") and self.opset < 13:
            attrs.setdefault("axis", 1)
            attrs["_coerce_2d"] = 1
        if any(isinstance(v, np.ndarray) for v in attrs.values()):
            raise _Refusal(
                "UNSUPPORTED_OPERATOR",
                f"{where}: tensor attributes are supported for Constant and ConstantOfShape only",
            )
        return attrs

    def _refuse_used_extra_outputs(self, node, where: str, keep: int) -> None:
        for name in node.output[keep:]:
            if name and self.consumers.get(name):
                raise _Refusal(
                    "UNSUPPORTED_GRAPH",
                    f"{where}: output {name[:100]!r} (training statistics, masks or indices) is read by the graph; "
                    "only the main output is supported",
                )

    def _emit(self, node: GraphNode, fold: bool = False) -> None:
        """Add a node to the spec after running it on the probe; fold it if its inputs are all constants."""
        inputs = [name for name in node.inputs if name]
        if fold and all(name in self.constants for name in inputs):
            return self._fold(node)
        if len(self.nodes) >= MAX_NODES:
            raise _Refusal("UNSUPPORTED_GRAPH", f"the converted graph has more than {MAX_NODES} nodes")
        with torch.device("meta"):  # the probe's layers allocate nothing
            step: Step = compile_node(len(self.nodes), node, self.static, self.layers.__setitem__)
        outputs = run_step(step, self.values, self.context, self.layers.__getitem__)
        self.values.update((name, value) for name, value in zip(node.outputs, outputs) if name)
        self.nodes.append(node)
        return None

    def _fold(self, node: GraphNode) -> None:
        step = compile_node(len(self.nodes), node, set(self.static), lambda key, module: None)
        cpu = RunContext(False, torch.device("cpu"), torch.float32)
        values = {name: self.constants[name] for name in node.inputs if name}
        outputs = run_step(step, values, cpu, lambda key: None)
        for name, value in zip(node.outputs, outputs):
            if name:
                array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
                bounded(array.shape)
                self._add_constant(name, array)

    def _layer(
        self, node, x: str, op: str, path_hint: str, attrs: dict[str, Any], weights: dict[str, np.ndarray], output: str
    ) -> None:
        """Add layer `op` reading value `x`, its weights under the layer's path in the state dict."""
        path = self.names.claim(path_hint)
        for key, array in weights.items():
            self.state[f"{path}.{key}"] = torch.from_numpy(np.array(array, dtype=np.float32, order="C"))
        if op == "batch_norm":
            self.state[f"{path}.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
        self._emit(GraphNode(name=node.name, op=op, inputs=(x,), outputs=(output,), attributes=attrs, layer=path))

    def _spec(self, input_name: str, input_shape: tuple[int, ...], output: str, probe_batch: int) -> GraphSpec:
        if output not in self.values or output in self.constants or output in self.parameters:
            raise _Refusal("UNSUPPORTED_GRAPH", f"the graph's output {output[:100]!r} is not computed from its input")
        shape = tuple(self.values[output].shape)
        if len(shape) != 2 or shape[0] != probe_batch:
            raise _Refusal(
                "UNSUPPORTED_GRAPH",
                f"the graph's output has shape {list(shape)}; effcap audits classifiers whose output is logits "
                "(batch, classes)",
            )
        used = {name for node in self.nodes for name in node.inputs}
        constants = {name: GraphConstant.of(array) for name, array in self.constants.items() if name in used}
        if sum(len(c.data) for c in constants.values()) > 2 * MAX_CONSTANT_BYTES:
            raise _Refusal("UNSUPPORTED_GRAPH", f"the graph's constants exceed {MAX_CONSTANT_BYTES >> 20} MiB")
        parameters = tuple(p for name, p in self.parameters.items() if name in used)
        spec = GraphSpec(
            input_shape=input_shape,
            num_classes=shape[1],
            input=input_name,
            output=output,
            nodes=tuple(self.nodes),
            constants=constants,
            parameters=parameters,
        )
        with torch.device("meta"):
            network = GraphNetwork(spec)
        data_shapes(network, probe_batch)
        expected = set(network.state_dict())
        if set(self.state) != expected:
            missing, extra = sorted(expected - set(self.state)), sorted(set(self.state) - expected)
            raise _Refusal(
                "INVALID_ONNX",
                f"the converted weights do not match the graph (missing {missing[:5]}, unused {extra[:5]})",
            )
        return spec


_NO_OPERATOR = Operator(None, None)


def _export_notes(spec: GraphSpec, conv_initializers: list[str], layer_weights: dict[str, int], values) -> list[str]:
    """Warnings about what an export did to the network that its graph can only hint at."""
    notes = []
    shared = sorted(name for name, uses in layer_weights.items() if uses > 1 or name in values)
    if shared:
        notes.append(
            f"{len(shared)} initializers are read by several layers or operators (e.g. {shared[0][:80]!r}); each "
            "layer trains its own copy (the exporter may have merged equal constants; tied weights are trained untied)"
        )
    has_batch_norm = any(node.op == "batch_norm" for node in spec.nodes)
    folded_names = [n for n in conv_initializers if n.startswith("onnx::Conv") or n.endswith(".weight_bias")]
    if folded_names and not has_batch_norm:
        notes.append(
            f"the convolutions' weights have names an export made up (e.g. {folded_names[0][:60]!r}) and the graph "
            "has no BatchNormalization: an eval-mode or dynamo export folds BatchNorm into the convolutions, so if "
            f"the network has BatchNorm, the retrained trials here have none. Export with {ONNX_EXPORT_CALL}"
        )
    producer = {out: node for node in spec.nodes for out in node.outputs}.get(spec.output)
    if producer is not None and producer.op == "Softmax":
        notes.append(
            "the graph's output is a Softmax: trials train with cross-entropy on the output as logits, so they fit "
            "probabilities squashed twice and train poorly; export the network without its final softmax "
            "(a final log_softmax is fine)"
        )
    return notes


def supported_operators() -> list[str]:
    """ONNX operator names the importer accepts (layers included)."""
    return sorted({*OPERATORS, *_LAYER_HANDLERS, "Constant"})


# ---------------------------------------------------------------- layer handlers
# Each returns True when it made a layer of the node, False to treat the node as a plain operator
# (e.g. a MatMul of two activations).


def _conv(converter: _Converter, node, attrs: dict[str, Any], where: str) -> bool:
    transpose = node.op_type == "ConvTranspose"
    weight = converter._initializer(node.input[1], where) if len(node.input) > 1 else None
    if weight is None or weight.ndim not in (3, 4, 5):
        raise _Refusal(
            "UNSUPPORTED_OPERATOR",
            f"{where}: {node.op_type} needs its weight as an initializer of rank 3 to 5 (computed weights are not "
            "supported)",
        )
    bias = converter._initializer(node.input[2], where, rank=1) if len(node.input) > 2 and node.input[2] else None
    if len(node.input) > 2 and node.input[2] and bias is None:
        raise _Refusal("UNSUPPORTED_OPERATOR", f"{where}: {node.op_type} needs its bias as a 1-D initializer")
    x_name = converter._value(node.input[0], where)
    x = converter.values.get(x_name)
    if not isinstance(x, torch.Tensor) or x.dim() != weight.ndim:
        raise _Refusal("INVALID_ONNX", f"{where}: the input's rank does not match the weight's")
    spatial = weight.ndim - 2
    kernel = list(weight.shape[2:])
    if list(attrs.get("kernel_shape", kernel)) != kernel:
        raise _Refusal(
            "INVALID_ONNX", f"{where}: kernel_shape {list(attrs['kernel_shape'])} differs from the weight's {kernel}"
        )
    group = attrs.get("group", 1)
    strides = list(attrs.get("strides", [1] * spatial))
    dilations = list(attrs.get("dilations", [1] * spatial))
    pads = list(attrs.get("pads", [0] * 2 * spatial))
    auto_pad = attrs.get("auto_pad", "NOTSET")
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        if transpose:
            raise _Refusal(
                "UNSUPPORTED_OPERATOR",
                f"{where}: ConvTranspose with auto_pad {auto_pad} is not supported; export with explicit pads",
            )
        begins, ends = same_pads(list(x.shape[2:]), kernel, strides, dilations, upper=auto_pad == "SAME_UPPER")
        pads = begins + ends
    elif auto_pad == "VALID":
        pads = [0] * 2 * spatial
    c_in = int(x.shape[1])
    c_out = weight.shape[1] * group if transpose else weight.shape[0]
    if (weight.shape[0] if transpose else weight.shape[1] * group) != c_in:
        raise _Refusal(
            "INVALID_ONNX",
            f"{where}: the weight {list(weight.shape)} with group {group} does not take {c_in} input channels",
        )
    if bias is not None and bias.shape[0] != c_out:
        raise _Refusal("INVALID_ONNX", f"{where}: the bias has {bias.shape[0]} entries for {c_out} output channels")
    layer_attrs: dict[str, Any] = {
        "in_channels": c_in,
        "out_channels": int(c_out),
        "kernel_shape": tuple(kernel),
        "strides": tuple(strides),
        "pads": tuple(pads),
        "dilations": tuple(dilations),
        "group": int(group),
        "bias": int(bias is not None),
    }
    if transpose:
        output_padding = list(attrs.get("output_padding", [0] * spatial))
        if "output_shape" in attrs:
            raise _Refusal(
                "UNSUPPORTED_OPERATOR",
                f"{where}: ConvTranspose with output_shape is not supported; export with pads and output_padding",
            )
        layer_attrs["output_padding"] = tuple(output_padding)
    weights = {"weight": weight} | ({"bias": bias} if bias is not None else {})
    converter.conv_initializers.extend(name for name in node.input[1:3] if name)
    converter._layer(
        node,
        x_name,
        "conv_transpose" if transpose else "conv",
        _layer_path(node.input[1], node.name, node.op_type),
        layer_attrs,
        weights,
        node.output[0],
    )
    return True


def _linear_weights(
    converter: _Converter, node, attrs: dict[str, Any], where: str
) -> tuple[np.ndarray, np.ndarray | None] | None:
    """(torch weight (out, in), bias or None) for a Gemm or MatMul whose second input is a 2-D weight."""
    if len(node.input) < 2 or converter._resolve(node.input[1]) not in converter.initializers:
        return None
    b = converter.initializers[converter._resolve(node.input[1])]
    if b.dtype != np.float32 or b.ndim != 2:
        return None
    if node.op_type == "MatMul":
        converter._initializer(node.input[1], where, rank=2)
        return b.T, None
    weight = (b if attrs.get("transB", 0) else b.T) * attrs.get("alpha", 1.0)
    bias = None
    if len(node.input) > 2 and node.input[2]:
        c = converter._initializer(node.input[2], where)
        if c is None:
            return None
        if c.size == weight.shape[0] and c.shape[-1:] == (weight.shape[0],) and c.ndim <= 2:
            bias = c.reshape(-1) * attrs.get("beta", 1.0)
        elif c.size == 1:
            bias = np.full(weight.shape[0], float(c.reshape(-1)[0]) * attrs.get("beta", 1.0), dtype=np.float32)
        else:
            raise _Refusal(
                "UNSUPPORTED_OPERATOR",
                f"{where}: Gemm's C must be a bias over the output features, shape {[weight.shape[0]]}",
            )
    converter._initializer(node.input[1], where, rank=2)
    return weight, bias


def _linear(converter: _Converter, node, attrs: dict[str, Any], where: str) -> bool:
    found = _linear_weights(converter, node, attrs, where)
    if found is None:
        return False
    weight, bias = found
    x_name = converter._value(node.input[0], where)
    if node.op_type == "Gemm" and attrs.get("transA", 0):
        transposed = f"{node.output[0]}::transA"
        converter._emit(
            GraphNode(
                name=node.name, op="Transpose", inputs=(x_name,), outputs=(transposed,), attributes={"perm": (1, 0)}
            )
        )
        x_name = transposed
    x = converter.values.get(x_name)
    if (
        not isinstance(x, torch.Tensor)
        or x.dim() < 1
        or x.shape[-1] != weight.shape[1]
        or (node.op_type == "Gemm" and x.dim() != 2)
    ):
        raise _Refusal(
            "INVALID_ONNX", f"{where}: the input's last axis does not match the weight {list(weight.shape[::-1])}"
        )
    output = node.output[0]
    bias_add = _fusable_bias(converter, node, weight.shape[0]) if bias is None and node.op_type == "MatMul" else None
    if bias_add is not None:  # the Linear computes the Add's output; the MatMul's own output has no other reader
        add, bias = bias_add
        output = add.output[0]
    weights = {"weight": weight} | ({"bias": bias} if bias is not None else {})
    path = _layer_path(node.input[1], node.name, node.op_type)
    converter._layer(
        node,
        x_name,
        "linear",
        path,
        {"in_features": int(weight.shape[1]), "out_features": int(weight.shape[0]), "bias": int(bias is not None)},
        weights,
        output,
    )
    return True


def _fusable_bias(converter: _Converter, node, features: int) -> tuple[Any, np.ndarray] | None:
    """The Add right after a MatMul that adds a constant bias vector, when the MatMul's output has no other reader."""
    readers = converter.consumers.get(node.output[0], [])
    if len(readers) != 1 or readers[0][0] is None or readers[0][0].op_type != "Add":
        return None
    add = readers[0][0]
    other = add.input[1 - readers[0][1]]
    array = converter.initializers.get(converter._resolve(other))
    if (
        array is None
        or array.dtype != np.float32
        or array.size != features
        or array.shape[-1:] != (features,)
        or len(converter.consumers.get(other, [])) != 1
    ):
        return None
    converter.layer_weights[converter._resolve(other)] = converter.layer_weights.get(converter._resolve(other), 0) + 1
    converter.fused.add(id(add))
    return add, array.reshape(-1)


def _batch_norm(converter: _Converter, node, attrs: dict[str, Any], where: str) -> bool:
    if attrs.get("spatial", 1) != 1:
        raise _Refusal("UNSUPPORTED_OPERATOR", f"{where}: BatchNormalization with spatial=0 is not supported")
    arrays = [converter._initializer(name, where, rank=1) if name else None for name in node.input[1:5]]
    if len(arrays) != 4 or any(a is None for a in arrays) or len({a.shape for a in arrays}) != 1:
        raise _Refusal(
            "UNSUPPORTED_OPERATOR",
            f"{where}: BatchNormalization needs its scale, bias, mean and variance as 1-D initializers of one size",
        )
    scale, shift, mean, var = arrays
    if (var < 0).any():
        raise _Refusal("INVALID_ONNX", f"{where}: a negative running variance")
    x_name = converter._value(node.input[0], where)
    x = converter.values.get(x_name)
    if not isinstance(x, torch.Tensor) or x.dim() < 2 or x.shape[1] != scale.shape[0]:
        raise _Refusal("INVALID_ONNX", f"{where}: the input's channels do not match the {scale.shape[0]} statistics")
    converter._refuse_used_extra_outputs(node, where, keep=1)
    momentum = 1.0 - attrs.get("momentum", 0.9)  # ONNX weighs the old statistics; torch the new batch's
    layer_attrs = {
        "num_features": int(scale.shape[0]),
        "rank": int(x.dim()),
        "eps": attrs.get("epsilon", 1e-5),
        "momentum": momentum,
    }
    weights = {"weight": scale, "bias": shift, "running_mean": mean, "running_var": var}
    converter._layer(
        node,
        x_name,
        "batch_norm",
        _layer_path(node.input[1], node.name, node.op_type),
        layer_attrs,
        weights,
        node.output[0],
    )
    return True


def _layer_norm(converter: _Converter, node, attrs: dict[str, Any], where: str) -> bool:
    scale = converter._initializer(node.input[1], where) if len(node.input) > 1 else None
    shift = converter._initializer(node.input[2], where) if len(node.input) > 2 and node.input[2] else None
    if scale is None or (len(node.input) > 2 and node.input[2] and shift is None):
        raise _Refusal(
            "UNSUPPORTED_OPERATOR", f"{where}: LayerNormalization needs its scale (and bias) as initializers"
        )
    x_name = converter._value(node.input[0], where)
    x = converter.values.get(x_name)
    if not isinstance(x, torch.Tensor):
        raise _Refusal("INVALID_ONNX", f"{where}: LayerNormalization of a constant")
    axis = attrs.get("axis", -1)
    if not -x.dim() <= axis < x.dim() or axis % x.dim() == 0:
        raise _Refusal(
            "UNSUPPORTED_OPERATOR",
            f"{where}: LayerNormalization over axis {axis} of a rank-{x.dim()} input (the batch axis included) is "
            "not supported",
        )
    normalized = tuple(int(d) for d in x.shape[axis % x.dim() :])
    if scale.size != np.prod(normalized) or (shift is not None and shift.size != scale.size):
        raise _Refusal(
            "INVALID_ONNX", f"{where}: scale/bias of {scale.size} values for normalized shape {list(normalized)}"
        )
    converter._refuse_used_extra_outputs(node, where, keep=1)
    weights = {"weight": scale.reshape(normalized)} | ({"bias": shift.reshape(normalized)} if shift is not None else {})
    layer_attrs = {"normalized_shape": normalized, "eps": attrs.get("epsilon", 1e-5), "bias": int(shift is not None)}
    converter._layer(
        node,
        x_name,
        "layer_norm",
        _layer_path(node.input[1], node.name, node.op_type),
        layer_attrs,
        weights,
        node.output[0],
    )
    return True


_LAYER_HANDLERS = {
    "Conv": _conv,
    "ConvTranspose": _conv,
    "Gemm": _linear,
    "MatMul": _linear,
    "BatchNormalization": _batch_norm,
    "LayerNormalization": _layer_norm,
}
