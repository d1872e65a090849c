"""The libcst transformer behind ``python -m jmod.port``.

It reads torch model code and writes the jax/jmod spelling of each construct in
``_table.py``. It never silently changes meaning: a rewrite applies only where the
receiver is known (or, for names only torch tensors have, not known not) to be a
tensor, and what it cannot translate keeps a ``# jmod.port: <why>`` comment.

Kinds of values (a small flow-insensitive inference, enough for model files):
``T`` a tensor, ``M`` a module, ``O`` something else (ints, tuples, strings, python
modules), ``U`` not known.
"""

from __future__ import annotations

import collections
import re

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from jmod.port import _table as table

T, M, O, U = "T", "M", "O", "U"  # noqa: E741 (tensor, module, other, unknown)

_MODULE_NAMES = {"module", "m", "mod", "layer", "model", "net", "submodule", "netG", "netD"}
_BUILTINS_OTHER = {
    "len", "int", "float", "range", "list", "tuple", "dict", "set", "sum", "min", "max", "sorted", "isinstance",
    "str", "bool", "zip", "enumerate", "getattr", "hasattr", "print", "abs", "round", "any", "all", "type", "super",
}
_TENSOR_ONLY_METHODS = {
    "view", "view_as", "reshape_as", "size", "numel", "nelement", "dim", "ndimension", "contiguous", "transpose", "t",
    "permute", "masked_fill", "unsqueeze", "expand", "expand_as", "repeat", "repeat_interleave", "split", "chunk",
    "detach", "clone", "pow", "exp", "log", "sqrt", "sigmoid", "tanh", "softmax", "log_softmax", "clamp", "new_zeros",
    "new_ones", "new_full", "new_empty", "new_tensor", "type_as", "masked_fill_", "relu", "neg", "abs", "isnan",
}
_MODULE_RETURNING_OTHER = {
    "parameters", "named_parameters", "modules", "named_modules", "children", "named_children", "buffers",
    "named_buffers", "state_dict", "load_state_dict", "register_buffer", "register_parameter", "extra_repr",
}


def _code(node: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(node)


def dotted(node: cst.CSTNode) -> str | None:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        base = dotted(node.value)
        return None if base is None else f"{base}.{node.attr.value}"
    return None


def _is_simple(node: cst.CSTNode) -> bool:
    """A receiver that can be written twice without evaluating anything twice."""
    return dotted(node) is not None


def _atom(code: str, node: cst.CSTNode) -> str:
    if isinstance(node, (cst.Name, cst.Attribute, cst.Call, cst.Subscript, cst.Integer, cst.Float)):
        return code
    return f"({code})"


def _int_value(node: cst.CSTNode) -> int | None:
    if isinstance(node, cst.Integer):
        return int(node.value)
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus) and isinstance(node.expression, cst.Integer):
        return -int(node.expression.value)
    return None


class _ClassInfo:
    def __init__(self, is_module: bool) -> None:
        self.is_module = is_module
        self.attrs: dict[str, str] = {}
        self.methods: set[str] = set()


class Porter(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, module: cst.Module) -> None:
        super().__init__()
        self.aliases: dict[str, str] = {}  # local name -> dotted path it was imported as
        self.classes: dict[str, _ClassInfo] = {}
        self.rewrites: dict[str, set[int]] = collections.defaultdict(set)
        self.flag_stack: list[list[str]] = []
        self.envs: list[dict[str, str]] = [{}]
        self.class_stack: list[_ClassInfo | None] = []
        self.fresh = 0
        self.dropped_device = 0
        self.device_reads: list[bool] = []
        self._prepass(module)

    # ------------------------------------------------------------------ pre-pass
    def _prepass(self, module: cst.Module) -> None:
        for node in module.body:
            if isinstance(node, cst.SimpleStatementLine):
                for s in node.body:
                    if isinstance(s, cst.Import):
                        for a in s.names:
                            full = dotted(a.name)
                            if a.asname is not None:
                                self.aliases[a.asname.name.value] = full
                            else:
                                self.aliases[full.split(".")[0]] = full.split(".")[0]
                    elif isinstance(s, cst.ImportFrom) and s.module is not None and not isinstance(s.names, cst.ImportStar):
                        base = dotted(s.module)
                        for a in s.names:
                            local = a.asname.name.value if a.asname is not None else a.name.value
                            self.aliases[local] = f"{base}.{a.name.value}"
        # classes: which are modules, and what their attributes hold
        for node in module.body:
            if isinstance(node, cst.ClassDef):
                is_mod = False
                for b in node.bases:
                    name = dotted(b.value)
                    full = self.resolve_name(name) if name else None
                    if (full and full.startswith("torch.nn.")) or (name in self.classes and self.classes[name].is_module):
                        is_mod = True
                info = _ClassInfo(is_mod)
                self.classes[node.name.value] = info
                for item in node.body.body:
                    if isinstance(item, cst.FunctionDef):
                        info.methods.add(item.name.value)
                for item in node.body.body:
                    if isinstance(item, cst.FunctionDef):
                        self._collect_attrs(item, info)

    def _collect_attrs(self, fn: cst.FunctionDef, info: _ClassInfo) -> None:
        porter = self

        class V(cst.CSTVisitor):
            def visit_Assign(self, node: cst.Assign) -> None:
                for t in node.targets:
                    if isinstance(t.target, cst.Attribute) and dotted(t.target.value) == "self":
                        name = t.target.attr.value
                        if isinstance(node.value, cst.Name) and node.value.value == "None":
                            continue
                        k = porter.kind(node.value)
                        if info.attrs.get(name, k) != k:
                            k = U
                        info.attrs[name] = k

            def visit_Call(self, node: cst.Call) -> None:
                if dotted(node.func) == "self.register_buffer" and node.args:
                    a = node.args[0].value
                    if isinstance(a, cst.SimpleString):
                        info.attrs[a.evaluated_value] = T

        porter.envs.append({"self": M})
        porter.class_stack.append(info)
        fn.visit(V())
        porter.class_stack.pop()
        porter.envs.pop()

    # ------------------------------------------------------------------ helpers
    def resolve_name(self, name: str | None) -> str | None:
        """``nn.Linear`` -> ``torch.nn.Linear`` through the file's imports."""
        if name is None:
            return None
        head, _, rest = name.partition(".")
        base = self.aliases.get(head)
        if base is None:
            return None
        return f"{base}.{rest}" if rest else base

    def torch_path(self, node: cst.CSTNode) -> str | None:
        full = self.resolve_name(dotted(node))
        return full if full is not None and (full == "torch" or full.startswith("torch.")) else None

    def line(self, node: cst.CSTNode) -> int:
        try:
            return self.get_metadata(PositionProvider, node).start.line
        except KeyError:
            return -1

    def did(self, kind: str, node: cst.CSTNode) -> None:
        self.rewrites[kind].add(self.line(node))

    def flag(self, why: str) -> None:
        if self.flag_stack:
            if why not in self.flag_stack[-1]:
                self.flag_stack[-1].append(why)

    def lookup(self, name: str) -> str:
        for env in reversed(self.envs):
            if name in env:
                return env[name]
        if name in self.aliases:
            return O
        if name in ("None", "True", "False"):
            return O
        return U

    # ------------------------------------------------------------------ kinds
    def kind(self, node: cst.CSTNode) -> str:
        if isinstance(node, cst.Name):
            return self.lookup(node.value)
        if isinstance(node, (cst.Integer, cst.Float, cst.SimpleString, cst.FormattedString, cst.ConcatenatedString,
                             cst.List, cst.Tuple, cst.Dict, cst.Set, cst.ListComp, cst.DictComp, cst.SetComp,
                             cst.GeneratorExp, cst.Lambda)):
            return O
        if isinstance(node, cst.Attribute):
            attr = node.attr.value
            tp = self.torch_path(node)
            if tp is not None:
                return O
            if attr in ("shape", "dtype", "device", "ndim", "training", "is_cuda"):
                return O
            base = self.kind(node.value)
            if attr in ("T", "mT", "data"):
                return base
            if attr in ("weight", "bias") and base != O:
                return T
            if dotted(node.value) == "self" and self.class_stack and self.class_stack[-1] is not None:
                return self.class_stack[-1].attrs.get(attr, U)
            if base == M:
                return U
            return U
        if isinstance(node, cst.Subscript):
            k = self.kind(node.value)
            return T if k == T else (M if k == M else U)
        if isinstance(node, (cst.BinaryOperation, cst.Comparison, cst.BooleanOperation)):
            if isinstance(node, cst.Comparison):
                kinds = [self.kind(node.left)] + [self.kind(c.comparator) for c in node.comparisons]
            else:
                kinds = [self.kind(node.left), self.kind(node.right)]
            return T if T in kinds else (U if U in kinds else O)
        if isinstance(node, cst.UnaryOperation):
            return self.kind(node.expression)
        if isinstance(node, cst.IfExp):
            a, b = self.kind(node.body), self.kind(node.orelse)
            return a if a == b else U
        if isinstance(node, cst.Call):
            return self.call_kind(node)
        return U

    def call_kind(self, node: cst.Call) -> str:
        func = node.func
        tp = self.torch_path(func)
        if tp is not None:
            last = tp.rsplit(".", 1)[-1]
            if tp.startswith("torch.nn.functional.") or tp.startswith("torch.nn.init."):
                return T
            if tp.startswith("torch.nn.") or tp.startswith("torch.optim."):
                return M if last[:1].isupper() else O
            if last in ("device", "Size", "is_tensor", "no_grad", "finfo", "iinfo") or last in table.DTYPES:
                return O
            return T
        if isinstance(func, cst.Name):
            name = func.value
            if name in self.classes:
                return M if self.classes[name].is_module else O
            if name == "next" and node.args and isinstance(node.args[0].value, cst.Call):
                inner = node.args[0].value.func
                if isinstance(inner, cst.Attribute) and inner.attr.value in ("parameters", "buffers"):
                    return T
            if name in _BUILTINS_OTHER:
                return O
            k = self.lookup(name)
            return T if k == M else U
        if isinstance(func, cst.Call) and dotted(func.func) == "getattr" and func.args:
            if (self.torch_path(func.args[0].value) or "") == "torch.nn":
                return M
        if isinstance(func, cst.Attribute):
            attr = func.attr.value
            rk = self.kind(func.value)
            if rk == T:
                return O if attr in ("size", "item", "tolist", "dim", "numel", "ndimension", "nelement") else T
            if rk == M:
                if attr in _MODULE_RETURNING_OTHER:
                    return O
                if attr in ("to", "cuda", "cpu", "float", "half", "double", "train", "eval", "requires_grad_"):
                    return M
                return T
            if attr in _TENSOR_ONLY_METHODS:
                return O if attr in ("size", "numel", "dim", "ndimension", "nelement") else T
        return U

    def bind(self, target: cst.BaseAssignTargetExpression, value: cst.BaseExpression | None, k: str) -> None:
        env = self.envs[-1]
        if isinstance(target, cst.Name):
            env[target.value] = k
        elif isinstance(target, (cst.Tuple, cst.List)):
            elems = [e.value for e in target.elements]
            if isinstance(value, (cst.Tuple, cst.List)) and len(value.elements) == len(elems):
                for e, v in zip(elems, value.elements):
                    self.bind(e, v.value, self.kind(v.value))
            else:
                for e in elems:
                    self.bind(e, None, T if k == T else (O if k == O else U))

    # ------------------------------------------------------------------ statements and flags
    def _push(self) -> None:
        self.flag_stack.append([])

    def _attach(self, updated, whys: list[str]):
        if not whys:
            return updated
        text = "# jmod.port: " + "; ".join(whys)
        if isinstance(updated, cst.SimpleStatementLine):
            tw = updated.trailing_whitespace
            comment = f"{tw.comment.value}  {text}" if tw.comment else text
            return updated.with_changes(
                trailing_whitespace=tw.with_changes(whitespace=cst.SimpleWhitespace("  "), comment=cst.Comment(comment))
            )
        body = getattr(updated, "body", None)
        if isinstance(body, cst.IndentedBlock):
            h = body.header
            comment = f"{h.comment.value}  {text}" if h.comment else text
            return updated.with_changes(
                body=body.with_changes(header=h.with_changes(whitespace=cst.SimpleWhitespace("  "), comment=cst.Comment(comment)))
            )
        if isinstance(body, cst.SimpleStatementSuite):
            tw = body.trailing_whitespace
            comment = f"{tw.comment.value}  {text}" if tw.comment else text
            return updated.with_changes(
                body=body.with_changes(trailing_whitespace=tw.with_changes(whitespace=cst.SimpleWhitespace("  "), comment=cst.Comment(comment)))
            )
        return updated

    def visit_SimpleStatementLine(self, node) -> None:
        self._push()

    def leave_SimpleStatementLine(self, original, updated):
        whys = self.flag_stack.pop()
        if isinstance(updated, cst.SimpleStatementLine) and not updated.body:
            return cst.RemovalSentinel.REMOVE
        return self._attach(updated, whys)

    def visit_If(self, node) -> None:
        self._push()

    def leave_If(self, original, updated):
        return self._attach(updated, self.flag_stack.pop())

    def visit_While(self, node) -> None:
        self._push()

    def leave_While(self, original, updated):
        return self._attach(updated, self.flag_stack.pop())

    def visit_For(self, node) -> None:
        self._push()
        it = node.iter
        k = U
        elem = U
        if isinstance(it, cst.Call) and isinstance(it.func, cst.Attribute):
            a = it.func.attr.value
            if a in ("modules", "children"):
                elem = M
            elif a in ("parameters", "buffers"):
                elem = T
            elif a in ("named_modules", "named_children", "named_parameters", "named_buffers"):
                t = node.target
                if isinstance(t, cst.Tuple) and len(t.elements) == 2:
                    self.bind(t.elements[0].value, None, O)
                    self.bind(t.elements[1].value, None, M if "modules" in a or "children" in a else T)
                    return
        else:
            k = self.kind(it)
            elem = M if k == M else (T if k == T else U)
        self.bind(node.target, None, elem)

    def leave_For(self, original, updated):
        return self._attach(updated, self.flag_stack.pop())

    def visit_ClassDef(self, node) -> None:
        self._push()
        self.class_stack.append(self.classes.get(node.name.value))

    def leave_ClassDef(self, original, updated):
        self.class_stack.pop()
        return self._attach(updated, self.flag_stack.pop())

    def visit_FunctionDef(self, node) -> None:
        self._push()
        info = self.class_stack[-1] if self.class_stack else None
        env: dict[str, str] = {}
        params = list(node.params.params) + list(node.params.kwonly_params) + list(node.params.posonly_params)
        for i, p in enumerate(params):
            name = p.name.value
            if info is not None and info.is_module and i == 0 and name == "self":
                env[name] = M
            elif info is not None and info.is_module and node.name.value == "forward":
                env[name] = T
            elif name in _MODULE_NAMES:
                env[name] = M
            elif p.default is not None and isinstance(p.default, (cst.Integer, cst.Float, cst.SimpleString)):
                env[name] = O
            elif p.default is not None and dotted(p.default) in ("True", "False"):
                env[name] = O
            else:
                env[name] = U
        self.envs.append(env)
        self.class_stack.append(None if info is None else info)
        self.device_reads.append(False)

    def leave_FunctionDef(self, original, updated):
        self.envs.pop()
        self.class_stack.pop()
        decorators = []
        for od, d in zip(original.decorators, updated.decorators):
            tp = self.torch_path(od.decorator.func if isinstance(od.decorator, cst.Call) else od.decorator)
            if tp in ("torch.no_grad", "torch.inference_mode", "torch.enable_grad"):
                self.did("no_grad", od)
                continue
            decorators.append(d)
        updated = updated.with_changes(decorators=decorators)
        if self.device_reads.pop():
            updated = _drop_dead_device_lookups(updated, self)
        return self._attach(updated, self.flag_stack.pop())

    def visit_With(self, node) -> None:
        self._push()

    def leave_With(self, original, updated):
        whys = self.flag_stack.pop()
        items = original.items
        if len(items) == 1 and isinstance(items[0].item, cst.Call):
            tp = self.torch_path(items[0].item.func)
            if tp in ("torch.no_grad", "torch.inference_mode") and items[0].asname is None:
                self.did("no_grad", original)
                body = updated.body
                if isinstance(body, cst.IndentedBlock):
                    return cst.FlattenSentinel(list(body.body))
        return self._attach(updated, whys)

    def leave_Assign(self, original, updated):
        k = self.kind(original.value)
        for t in original.targets:
            self.bind(t.target, original.value, k)
        if len(updated.targets) == 1:
            tgt = updated.targets[0].target
            otgt = original.targets[0].target
            # x[idx] = v on a local tensor -> x = x.at[idx].set(v)
            if isinstance(otgt, cst.Subscript):
                base = otgt.value
                bk = self.kind(base)
                if bk == T and isinstance(base, cst.Name):
                    return self._subscript_set(original, tgt, updated.value, "set")
                if bk == T:
                    self.flag("assignment into an array attribute: arrays are immutable; compute the new array "
                              "and assign it (self.x = self.x.at[idx].set(v))")
            # p.data = w -> p = w (w fresh); p.requires_grad = ... -> by hand
            if isinstance(otgt, cst.Attribute) and otgt.attr.value == "data":
                if isinstance(original.value, (cst.Call, cst.BinaryOperation)):
                    self.did("data", original)
                    return updated.with_changes(targets=[cst.AssignTarget(tgt.value if isinstance(tgt, cst.Attribute) else tgt)])
                self.flag("`.data =` shares storage in torch; tie with `a.weight = b.weight` or copy with jnp.array(...)")
            if isinstance(otgt, cst.Attribute) and otgt.attr.value == "requires_grad":
                self.flag("freeze with module.requires_grad_(False) or module._parameters[name].requires_grad = False")
        return updated

    def leave_AugAssign(self, original, updated):
        otgt = original.target
        if isinstance(otgt, cst.Subscript) and self.kind(otgt.value) == T:
            op = {cst.AddAssign: "add", cst.SubtractAssign: "subtract", cst.MultiplyAssign: "multiply",
                  cst.DivideAssign: "divide"}.get(type(original.operator))
            if op and isinstance(otgt.value, cst.Name):
                return self._subscript_set(original, updated.target, updated.value, op)
            self.flag("in-place update of part of an array: use x = x.at[idx].add(v)")
        return updated

    def _subscript_set(self, original, tgt: cst.Subscript, value, op: str):
        name = _code(tgt.value)
        idx = ", ".join(_code(e.slice) for e in tgt.slice)
        sl = tgt.slice
        if op == "set" and len(sl) == 1 and isinstance(sl[0].slice, cst.Index):
            cond = sl[0].slice.value
            if isinstance(cond, cst.Comparison) and dotted(cond.left) == name:
                self.did("masking", original)
                new = cst.parse_expression(f"jnp.where({_code(cond)}, {_code(value)}, {name})")
                return cst.Assign(targets=[cst.AssignTarget(cst.Name(name))], value=new)
        self.did("index update", original)
        new = cst.parse_expression(f"{name}.at[{idx}].{op}({_code(value)})")
        return cst.Assign(targets=[cst.AssignTarget(cst.Name(name))], value=new)

    def leave_AnnAssign(self, original, updated):
        if original.value is not None:
            self.bind(original.target, original.value, self.kind(original.value))
        return updated

    # x.op_(...) statements
    def leave_Expr(self, original, updated):
        call = original.value
        if not (isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute)):
            return updated
        m = call.func.attr.value
        recv = call.func.value
        ucall = updated.value
        if not (isinstance(ucall, cst.Call) and isinstance(ucall.func, cst.Attribute)):
            return updated
        urecv = ucall.func.value
        args = ", ".join(_code(a.with_changes(comma=cst.MaybeSentinel.DEFAULT)) for a in ucall.args)
        rk = self.kind(recv)
        if m in table.INIT_IN_PLACE and (
            (isinstance(recv, cst.Attribute) and recv.attr.value in ("data", "weight", "bias")) and rk != O
        ):
            # (the .data may already be gone: leave_Attribute drops it from known tensors)
            target = urecv.value if isinstance(urecv, cst.Attribute) and urecv.attr.value == "data" else urecv
            self.did("init", original)
            fn = table.INIT_IN_PLACE[m]
            a = f", {args}" if args else ""
            return cst.Expr(cst.parse_expression(f"jmod.nn.init.{fn}({_code(target)}{a})"))
        if m == "backward" and not call.args:
            self.flag("gradients are returned, not stored: loss, grads = jmod.value_and_grad(loss_fn)(model); "
                      "optimizer.step(grads) (docs/porting.md#the-training-loop)")
            return updated
        if not m.endswith("_") or m.endswith("__") or rk in (O, M):
            return updated
        if isinstance(recv, cst.Name) and rk in (T, U):
            name = recv.value
            new = None
            if m in table.IN_PLACE_BINARY and len(ucall.args) == 1:
                new = f"{name} {table.IN_PLACE_BINARY[m]} {_atom(args, ucall.args[0].value)}"
            elif m == "masked_fill_" and len(ucall.args) == 2:
                new = f"jnp.where({_code(ucall.args[0].value)}, {_code(ucall.args[1].value)}, {name})"
            elif m == "clamp_":
                new = f"jnp.clip({name}, {args})"
            elif m == "zero_" and not ucall.args:
                new = f"jnp.zeros_like({name})"
            elif m == "fill_" and len(ucall.args) == 1:
                new = f"jnp.full_like({name}, {args})"
            if new is not None:
                self.did("in-place", original)
                return cst.Assign(targets=[cst.AssignTarget(cst.Name(name))], value=cst.parse_expression(new))
        if rk == T or m in ("masked_fill_", "add_", "mul_", "copy_", "zero_", "fill_"):
            self.flag(f"in-place .{m}() on {'an attribute' if not isinstance(recv, cst.Name) else 'an array'}: arrays "
                      "are immutable; compute the new array and assign it")
        return updated

    # ------------------------------------------------------------------ imports
    def leave_Import(self, original, updated):
        out = []
        for a in updated.names:
            full = dotted(a.name)
            if full == "torch" or not full.startswith("torch."):
                out.append(a)
                continue
            sub = full[len("torch."):]
            if sub.split(".")[0] in ("nn", "optim"):
                if a.asname is None:
                    self.did("import", original)  # torch.nn.X references become jmod.nn.X
                    continue
                self.did("import", original)
                out.append(a.with_changes(name=cst.parse_expression("jmod." + sub)))
            elif sub.startswith("utils.data"):
                out.append(a)
            else:
                self.flag(f"no jmod counterpart for {full}")
                out.append(a)
        if not out:
            return cst.RemovalSentinel.REMOVE
        out[-1] = out[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        return updated.with_changes(names=out)

    def leave_ImportFrom(self, original, updated):
        if updated.module is None or isinstance(updated.names, cst.ImportStar):
            return updated
        mod = dotted(updated.module)
        if mod != "torch" and not mod.startswith("torch."):
            return updated
        import jmod
        import jmod.nn
        import jmod.optim

        if mod == "torch":
            to_jmod, to_jax, keep = [], [], []
            for a in updated.names:
                n = a.name.value
                if n in ("nn", "optim"):
                    to_jmod.append(a)
                elif n == "Tensor":
                    to_jax.append(a.with_changes(name=cst.Name("Array"), asname=a.asname or cst.AsName(name=cst.Name("Tensor"))))
                elif hasattr(jmod, n):
                    to_jmod.append(a)
                else:
                    keep.append(a)
            stmts = []
            for base, names in (("jmod", to_jmod), ("jax", to_jax), ("torch", keep)):
                if names:
                    names[-1] = names[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
                    stmts.append(updated.with_changes(module=cst.Name(base), names=names))
            if keep:
                self.flag("no jmod counterpart for " + ", ".join(f"torch.{a.name.value}" for a in keep))
            if to_jmod or to_jax:
                self.did("import", original)
            if len(stmts) == 1:
                return stmts[0]
            # several statements from one: the caller's line gets them joined with ';'
            return cst.FlattenSentinel(stmts)
        sub = mod[len("torch."):]
        if sub.split(".")[0] in ("nn", "optim"):
            target = "jmod." + sub
            try:
                import importlib

                tmod = importlib.import_module(target)
            except ImportError:
                self.flag(f"no jmod counterpart for {mod}")
                return updated
            missing = [a.name.value for a in updated.names if not hasattr(tmod, a.name.value)]
            if missing:
                self.flag(f"{target} has no " + ", ".join(missing))
                return updated
            self.did("import", original)
            return updated.with_changes(module=cst.parse_expression(target))
        if sub.startswith("utils.data"):
            return updated
        self.flag(f"no jmod counterpart for {mod}")
        return updated

    # ------------------------------------------------------------------ attributes
    def leave_Attribute(self, original, updated):
        if original.attr.value == "device" and self.device_reads:
            self.device_reads[-1] = True
        tp = self.torch_path(original)
        if tp is not None:
            root = dotted(original).split(".")[0]
            rest = tp[len("torch."):] if tp != "torch" else ""
            if self.aliases.get(root) == "torch":
                # spelled from the torch root: torch.nn.X, torch.float32, torch.Tensor
                if rest in ("nn", "optim"):
                    self.did("torch.nn/optim -> jmod", original)
                    return cst.parse_expression("jmod." + rest)
                if rest in table.DTYPES:
                    self.did("dtype", original)
                    return cst.parse_expression(table.DTYPES[rest])
                if rest == "Tensor":
                    self.did("dtype", original)
                    return cst.parse_expression("jax.Array")
                if rest in ("pi", "e", "inf", "nan"):
                    self.did("constant", original)
                    return cst.parse_expression(f"jnp.{rest}")
            parts = tp.split(".")
            if len(parts) == 3 and parts[1] in ("nn", "optim"):
                import importlib

                try:
                    owner = importlib.import_module(f"jmod.{parts[1]}")
                except ImportError:
                    owner = None
                if owner is not None and not hasattr(owner, parts[2]):
                    self.flag(f"jmod.{parts[1]} has no {parts[2]}")
            return updated
        attr = original.attr.value
        rk = self.kind(original.value)
        if attr == "data" and rk == T:
            self.did("data", original)
            return updated.value
        if attr in ("is_cuda", "is_xpu", "is_mps") and rk in (T, U):
            self.did("device", original)
            plat = {"is_cuda": "gpu", "is_xpu": "xpu", "is_mps": "METAL"}[attr]
            return cst.parse_expression(f'(jax.default_backend() == "{plat}")')
        if attr == "requires_grad" and rk in (T, U) and not isinstance(original.value, cst.Call):
            self.did("requires_grad", original)
            return cst.parse_expression(f"jmod.nn.parameter.requires_grad({_code(updated.value)})")
        if attr == "grad" and rk == T:
            self.flag("gradients are returned by jmod.grad / jmod.value_and_grad, not stored on arrays")
        return updated

    def leave_Name(self, original, updated):
        return updated

    # ------------------------------------------------------------------ calls
    def leave_Call(self, original, updated):
        tp = self.torch_path(original.func)
        if tp is not None:
            return self._torch_call(original, updated, tp)
        if isinstance(original.func, cst.Attribute):
            return self._method_call(original, updated)
        return updated

    def _args(self, args, rename: bool = True) -> list[str]:
        out = []
        for a in args:
            if a.keyword is not None:
                kw = a.keyword.value
                if kw in table.DROPPED_KWARGS:
                    continue
                if kw == "out":
                    self.flag("out= has no jax counterpart: assign the result")
                if rename:
                    kw = table.KWARG_RENAMES.get(kw, kw)
                out.append(f"{kw}={_code(a.value)}")
            else:
                out.append(("*" * len(a.star) if isinstance(a.star, str) else "") + _code(a.value))
        return out

    def _torch_call(self, original, updated, tp: str):
        parts = tp.split(".")
        if len(parts) >= 2 and parts[1] in ("nn", "optim"):
            return updated  # jmod.nn / jmod.optim mirror torch's names and signatures
        if len(parts) >= 3 and parts[1] == "utils" and parts[2] == "data":
            return updated
        if len(parts) != 2:
            self.flag(f"no jax/jmod spelling known for {tp}")
            return updated
        name = parts[1]
        args = updated.args
        pos = [a for a in args if a.keyword is None]
        kws = {a.keyword.value: a for a in args if a.keyword is not None}
        if name in table.TO_JMOD:
            import jmod

            if hasattr(jmod, name):
                if "generator" in kws:
                    self.flag("pass a jmod.Generator as generator=")
                self.did("random", original)
                return cst.parse_expression(f"jmod.{name}({', '.join(self._args(args, rename=False))})")
        if name in table.SIZE_VARARGS:
            sizes = [_code(a.value) for a in pos]
            rest = [s for s in self._args([a for a in args if a.keyword is not None])]
            if len(pos) == 1 and not pos[0].star:
                shape = sizes[0]
            elif len(pos) == 1 and pos[0].star:
                shape = _code(pos[0].value)
            else:
                shape = "(" + ", ".join(sizes) + ("," if len(sizes) == 1 else "") + ")"
            self.did("torch function", original)
            return cst.parse_expression(f"{table.SIZE_VARARGS[name]}({', '.join([shape] + rest)})")
        if name in ("max", "min"):
            if len(pos) == 1 and not kws:
                self.did("torch function", original)
                return cst.parse_expression(f"jnp.{name}({_code(pos[0].value)})")
            if len(pos) == 2 and not kws and self.kind(original.args[1].value) == T:
                self.did("torch function", original)
                fn = "maximum" if name == "max" else "minimum"
                return cst.parse_expression(f"jnp.{fn}({_code(pos[0].value)}, {_code(pos[1].value)})")
            self.flag(f"torch.{name} with a dim returns (values, indices): write jnp.{name}(x, axis=d) and jnp.arg{name}(x, axis=d)")
            return updated
        if name == "flatten":
            x = _code(pos[0].value)
            start = _int_value(pos[1].value) if len(pos) > 1 else (_int_value(kws["start_dim"].value) if "start_dim" in kws else 0)
            end = _int_value(pos[2].value) if len(pos) > 2 else (_int_value(kws["end_dim"].value) if "end_dim" in kws else -1)
            return self._flatten(original, x, start, end)
        if name in ("split", "chunk"):
            dim = pos[2].value if len(pos) > 2 else (kws["dim"].value if "dim" in kws else cst.Integer("0"))
            return self._split(original, pos[0].value, pos[1].value, dim, name)
        if name == "topk":
            k = pos[1].value if len(pos) > 1 else kws["k"].value
            dim = pos[2].value if len(pos) > 2 else (kws["dim"].value if "dim" in kws else None)
            if (dim is None or _int_value(dim) == -1) and "largest" not in kws and len(pos) <= 3:
                self.did("torch function", original)
                return cst.parse_expression(f"jax.lax.top_k({_code(pos[0].value)}, {_code(k)})")
            self.flag("jax.lax.top_k works on the last axis (largest first): move the axis, negate for smallest")
            return updated
        if name == "is_tensor" and len(pos) == 1:
            self.did("torch function", original)
            return cst.parse_expression(f"isinstance({_code(pos[0].value)}, jax.Array)")
        if name == "save":
            if pos and isinstance(pos[0].value, cst.Call) and isinstance(pos[0].value.func, cst.Attribute) and pos[0].value.func.attr.value == "state_dict":
                self.did("torch function", original)
                return cst.parse_expression(f"jmod.save({', '.join(self._args(args, rename=False))})")
            self.flag("jmod.save writes state dicts (safetensors); save other objects with pickle")
            return updated
        if name in table.SAME_ARGS:
            fn = table.SAME_ARGS[name]
            self.did("torch function", original)
            if name in table.UNBIASED_DEFAULT:
                out = self._ddof(self._args(args))
                return cst.parse_expression(f"{fn}({', '.join(out)})")
            return updated.with_changes(func=cst.parse_expression(fn), args=self._edit_args(args))
        if name in ("no_grad", "enable_grad", "inference_mode"):
            return updated  # handled by the with/decorator rules; elsewhere flagged by the post-pass
        self.flag(f"no jax/jmod spelling known for torch.{name}")
        return updated

    def _edit_args(self, args) -> list:
        """The call's own argument nodes (formatting kept), keywords renamed, device plumbing dropped."""
        out = []
        for a in args:
            if a.keyword is not None:
                kw = a.keyword.value
                if kw in table.DROPPED_KWARGS:
                    continue
                if kw == "out":
                    self.flag("out= has no jax counterpart: assign the result")
                if kw in table.KWARG_RENAMES:
                    a = a.with_changes(keyword=cst.Name(table.KWARG_RENAMES[kw]))
            out.append(a)
        if out and out[-1].comma is not cst.MaybeSentinel.DEFAULT and len(out) < len(args):
            out[-1] = out[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        return out

    def _rename(self, original, updated, attr: str, kind: str):
        self.did(kind, original)
        return updated.with_changes(func=updated.func.with_changes(attr=cst.Name(attr)), args=self._edit_args(updated.args))

    def _ddof(self, out: list[str]) -> list[str]:
        res, ddof = [], "1"
        for s in out:
            if s.startswith("unbiased="):
                ddof = "1" if s.split("=", 1)[1].strip() == "True" else "0"
            elif s.startswith("correction="):
                ddof = s.split("=", 1)[1]
            else:
                res.append(s)
        return res + [f"ddof={ddof}"]

    def _flatten(self, original, x: str, start, end):
        if start is None or end is None:
            self.flag("flatten with computed dims: write jax.lax.collapse(x, start, end + 1)")
            return None
        self.did("reshape", original)
        if start == 0 and end == -1:
            return cst.parse_expression(f"jnp.ravel({x})")
        if end == -1:
            return cst.parse_expression(f"jax.lax.collapse({x}, {start})")
        if end >= 0:
            return cst.parse_expression(f"jax.lax.collapse({x}, {start}, {end + 1})")
        return cst.parse_expression(f"jax.lax.collapse({x}, {start}, {end + 1})")

    def _split(self, original, x_node, n_node, dim_node, kind: str):
        x = _code(x_node)
        dim = _code(dim_node)
        n = _code(n_node)
        self.did("split", original)
        if kind == "chunk":
            # equal parts: jnp.split raises where torch would make a smaller last chunk, never differs silently
            return cst.parse_expression(f"jnp.split({x}, {n}, axis={dim})")
        if isinstance(n_node, (cst.List, cst.Tuple)):
            vals = [_int_value(e.value) for e in n_node.elements]
            if all(v is not None for v in vals):
                cuts, acc = [], 0
                for v in vals[:-1]:
                    acc += v
                    cuts.append(str(acc))
                return cst.parse_expression(f"jnp.split({x}, [{', '.join(cuts)}], axis={dim})")
            return cst.parse_expression(f"jnp.split({x}, list(itertools.accumulate({n}))[:-1], axis={dim})")
        if _is_simple(x_node):
            return cst.parse_expression(f"jnp.split({x}, list(range({n}, {x}.shape[{dim}], {n})), axis={dim})")
        self.fresh += 1
        t = f"_split{self.fresh}"
        return cst.parse_expression(f"jnp.split(({t} := {x}), list(range({n}, {t}.shape[{dim}], {n})), axis={dim})")

    def _method_call(self, original, updated):
        m = original.func.attr.value
        recv = original.func.value
        if self.resolve_name(dotted(recv)) is not None and dotted(recv) is not None and dotted(recv).split(".")[0] in self.aliases:
            # a function of an imported python module (math.sqrt, np.zeros, F.relu)
            if self.kind(recv) == O and not isinstance(recv, cst.Call):
                return updated
        rk = self.kind(recv)
        if rk in (O, M):
            if rk == O or m not in table.MODULE_ALSO:
                return updated
            return updated
        if not isinstance(updated.func, cst.Attribute) or m not in _HANDLED_METHODS:
            return updated
        r = _code(updated.func.value)
        ra = _atom(r, updated.func.value)
        args = updated.args
        pos = [a for a in args if a.keyword is None]
        kws = {a.keyword.value: a for a in args if a.keyword is not None}
        allargs = ", ".join(self._args(args))
        sure = rk == T

        def parse(s: str, kind: str):
            self.did(kind, original)
            return cst.parse_expression(s)

        if m == "view":
            if len(pos) == 1 and not kws:
                a = original.args[0].value  # the torch spelling: is it a dtype?
                tp = self.torch_path(a)
                if (tp is not None and tp.split(".")[-1] in table.DTYPES) or "dtype" in (dotted(a) or ""):
                    return updated  # view(dtype) reinterprets bits: the same in jax (the dtype is respelled)
            return self._rename(original, updated, "reshape", "reshape")
        if m in ("view_as", "reshape_as") and len(pos) == 1:
            return parse(f"{ra}.reshape({_atom(_code(pos[0].value), pos[0].value)}.shape)", "reshape")
        if m == "size":
            if not args:
                return parse(f"{ra}.shape", "shape")
            if len(args) == 1:
                return parse(f"{ra}.shape[{_code(args[0].value)}]", "shape")
        if m in ("numel", "nelement") and not args:
            return parse(f"{ra}.size", "shape")
        if m in ("dim", "ndimension") and not args:
            return parse(f"{ra}.ndim", "shape")
        if m == "contiguous" and not args:
            return parse(r, "dropped")
        if m == "transpose" and len(pos) == 2:
            return self._rename(original, updated, "swapaxes", "axes")
        if m == "t" and not args:
            return parse(f"{ra}.T", "axes")
        if m == "permute":
            return self._rename(original, updated, "transpose", "axes")
        if m == "masked_fill" and len(pos) == 2:
            return parse(f"jnp.where({_code(pos[0].value)}, {_code(pos[1].value)}, {r})", "masking")
        if m == "unsqueeze" and len(args) == 1:
            return parse(f"jnp.expand_dims({r}, {_code(args[0].value)})", "axes")
        if m in ("expand", "repeat"):
            sizes = [_code(a.value) for a in pos]
            if len(pos) == 1 and isinstance(pos[0].value, (cst.Tuple, cst.List, cst.Name)):
                shape = sizes[0]
            else:
                n = len(sizes)
                if m == "expand" and any(_int_value(a.value) == -1 for a in pos):
                    if not _is_simple(updated.func.value):
                        self.flag("expand with -1 on an expression: write jnp.broadcast_to(x, shape)")
                        return updated
                    sizes = [f"{ra}.shape[{i - n}]" if _int_value(a.value) == -1 else s for i, (a, s) in enumerate(zip(pos, sizes))]
                shape = "(" + ", ".join(sizes) + ("," if n == 1 else "") + ")"
            fn = "jnp.broadcast_to" if m == "expand" else "jnp.tile"
            return parse(f"{fn}({r}, {shape})", "axes")
        if m == "expand_as" and len(pos) == 1:
            return parse(f"jnp.broadcast_to({r}, {_atom(_code(pos[0].value), pos[0].value)}.shape)", "axes")
        if m == "repeat_interleave":
            return parse(f"jnp.repeat({r}, {allargs})", "axes")
        if m in ("split", "chunk") and pos:
            dim = pos[1].value if len(pos) > 1 else (kws["dim"].value if "dim" in kws else cst.Integer("0"))
            return self._split(original, updated.func.value, pos[0].value, dim, m)
        if m == "flatten" and args:
            start = _int_value(pos[0].value) if pos else (_int_value(kws["start_dim"].value) if "start_dim" in kws else 0)
            end = _int_value(pos[1].value) if len(pos) > 1 else (_int_value(kws["end_dim"].value) if "end_dim" in kws else -1)
            res = self._flatten(original, r, start, end)
            return updated if res is None else res
        if m in table.CAST_METHODS and not args:
            if sure:
                return parse(f"{ra}.astype({table.CAST_METHODS[m]})", "dtype")
            self.flag(f".{m}() of something not known to be an array (a Module keeps .{m}()): for an array write "
                      f"x.astype({table.CAST_METHODS[m]})")
            return updated
        if m == "type_as" and len(pos) == 1:
            return parse(f"{ra}.astype({_atom(_code(pos[0].value), pos[0].value)}.dtype)", "dtype")
        if m in ("to", "cuda", "cpu", "type"):
            if not sure:
                self.flag(f".{m}(...) of something not known to be an array: a Module keeps .{m}(); an array needs no "
                          "device plumbing (jax.device_put(x, device) to move it)")
                return updated
            dtype_arg = None
            for a in args:
                v = a.value
                tpv = self.torch_path(v)
                if (a.keyword is not None and a.keyword.value == "dtype") or (tpv is not None and tpv.split(".")[-1] in table.DTYPES):
                    dtype_arg = v
            if m in ("cuda", "cpu"):
                return parse(r, "device")
            if dtype_arg is not None:
                upd = [a for a in args if a.value is dtype_arg or (a.keyword is not None and a.keyword.value == "dtype")]
                return parse(f"{ra}.astype({_code(upd[0].value) if upd else _code(dtype_arg)})", "dtype")
            if m == "to" and len(pos) == 1 and self.kind(pos[0].value) == T:
                self.flag("x.to(other) takes other's dtype and device: write x.astype(other.dtype)")
                return updated
            if m == "to":
                return parse(r, "device")
            self.flag(".type(): write x.astype(dtype)")
            return updated
        if m == "detach" and not args:
            return parse(f"jax.lax.stop_gradient({r})", "autograd")
        if m == "clone" and not args:
            return parse(r, "dropped")
        if m == "pow" and len(pos) == 1:
            return parse(f"{ra} ** {_atom(_code(pos[0].value), pos[0].value)}", "elementwise")
        if m in ("softmax", "log_softmax") and args:
            return parse(f"{table.METHOD_TO_FUNCTION[m]}({r}, {allargs})", "elementwise")
        if m == "clamp" and args:
            return parse(f"jnp.clip({r}, {allargs})", "elementwise")
        if m in table.METHOD_TO_FUNCTION and table.METHOD_TO_FUNCTION[m] and not args:
            if m == "abs" or m == "log" or sure or m in _TENSOR_ONLY_METHODS:
                return parse(f"{table.METHOD_TO_FUNCTION[m]}({r})", "elementwise")
        if m in ("new_zeros", "new_ones", "new_empty", "new_full", "new_tensor") and pos:
            if m == "new_full":
                fill = _code(pos[-1].value)
                size_args = pos[:-1]
            else:
                size_args, fill = pos, None
            sizes = [_code(a.value) for a in size_args]
            shape = sizes[0] if len(sizes) == 1 else "(" + ", ".join(sizes) + ")"
            dtype = _code(kws["dtype"].value) if "dtype" in kws else f"{ra}.dtype"
            if m == "new_tensor":
                return parse(f"jnp.asarray({sizes[0]}, dtype={dtype})", "torch function")
            fn = {"new_zeros": "jnp.zeros", "new_ones": "jnp.ones", "new_empty": "jnp.zeros", "new_full": "jnp.full"}[m]
            extra = f", {fill}" if fill is not None else ""
            return parse(f"{fn}({shape}{extra}, dtype={dtype})", "torch function")
        if m in table.REDUCTIONS:
            if m in ("max", "min") and args:
                if len(pos) == 1 and self.kind(pos[0].value) == T:
                    fn = "jnp.maximum" if m == "max" else "jnp.minimum"
                    return parse(f"{fn}({r}, {_code(pos[0].value)})", "elementwise")
                self.flag(f"x.{m}(dim) returns (values, indices) in torch: write x.{m}(axis=d) and x.arg{m}(axis=d)")
                return updated
            out = self._args(args)
            if m in ("std", "var"):
                out = self._ddof(out)
            if out != [_code(a) for a in args] or m in ("std", "var"):
                new_args = ", ".join(out)
                if m == "norm":
                    return parse(f"jnp.linalg.norm({r}{', ' + new_args if new_args else ''})", "reduction")
                if m not in ("std", "var"):
                    return self._rename(original, updated, m, "reduction")
                return parse(f"{ra}.{m}({new_args})", "reduction")
            if m == "norm":
                return parse(f"jnp.linalg.norm({r}{', ' + new_args if (new_args := ', '.join(out)) else ''})", "reduction")
            return updated
        if m == "requires_grad_":
            self.flag("requires_grad_ on an array: freeze the parameter with module.requires_grad_(False)")
            return updated
        return updated


_HANDLED_METHODS = (
    {"view", "view_as", "reshape_as", "size", "numel", "nelement", "dim", "ndimension", "contiguous", "transpose", "t",
     "permute", "masked_fill", "unsqueeze", "expand", "repeat", "expand_as", "repeat_interleave", "split", "chunk",
     "flatten", "type_as", "to", "cuda", "cpu", "type", "detach", "clone", "pow", "softmax", "log_softmax", "clamp",
     "new_zeros", "new_ones", "new_empty", "new_full", "new_tensor", "requires_grad_"}
    | set(table.CAST_METHODS) | set(table.METHOD_TO_FUNCTION) | table.REDUCTIONS
)


def _drop_dead_device_lookups(fn: cst.FunctionDef, porter: Porter) -> cst.FunctionDef:
    """Remove ``device = x.device`` once nothing in the function reads ``device``."""
    counts: collections.Counter = collections.Counter()

    class Count(cst.CSTVisitor):
        def visit_Name(self, node: cst.Name) -> None:
            counts[node.value] += 1

        def visit_Attribute(self, node: cst.Attribute) -> bool:
            node.value.visit(self)  # an attribute's own name (x.device) is no read of a variable
            return False

    fn.visit(Count())

    class Drop(cst.CSTTransformer):
        def leave_SimpleStatementLine(self, original, updated):
            if len(updated.body) == 1 and isinstance(updated.body[0], cst.Assign):
                a = updated.body[0]
                if (
                    len(a.targets) == 1
                    and isinstance(a.targets[0].target, cst.Name)
                    and isinstance(a.value, cst.Attribute)
                    and a.value.attr.value == "device"
                    and counts[a.targets[0].target.value] == 1
                ):
                    porter.dropped_device += 1
                    return cst.RemovalSentinel.REMOVE
            return updated

        def leave_IndentedBlock(self, original, updated):
            if not updated.body:
                return updated.with_changes(body=[cst.SimpleStatementLine([cst.Pass()])])
            return updated

    return fn.visit(Drop())


class _PostPass(cst.CSTTransformer):
    """Flags statements that still name torch; removes ``import torch`` when nothing does;
    adds the imports the rewrites use."""

    def __init__(self) -> None:
        super().__init__()
        self.left = 0

    def leave_SimpleStatementLine(self, original, updated):
        if any(isinstance(s, (cst.Import, cst.ImportFrom)) for s in updated.body):
            return updated
        return self._check(updated, updated)

    def _check(self, node, updated, header=None):
        names = _torch_names(header if header is not None else node)
        tw = None
        if isinstance(updated, cst.SimpleStatementLine):
            tw = updated.trailing_whitespace
        if names and not (tw and tw.comment and "jmod.port:" in tw.comment.value):
            why = "# jmod.port: no jax/jmod spelling known for " + ", ".join(sorted(names))
            if tw is not None:
                comment = f"{tw.comment.value}  {why}" if tw.comment else why
                return updated.with_changes(
                    trailing_whitespace=tw.with_changes(whitespace=cst.SimpleWhitespace("  "), comment=cst.Comment(comment))
                )
        return updated


def _torch_names(node: cst.CSTNode) -> set[str]:
    found: set[str] = set()

    class V(cst.CSTVisitor):
        def visit_Attribute(self, n: cst.Attribute) -> bool:
            d = dotted(n)
            if d and d.split(".")[0] == "torch":
                if not d.startswith("torch.utils.data"):  # data loading stays torch's (docs/porting.md)
                    found.add(d)
                return False
            return True

        def visit_Name(self, n: cst.Name) -> None:
            if n.value == "torch":
                found.add("torch")

        def visit_IndentedBlock(self, n) -> bool:
            return False

    node.visit(V())
    return found


def _needed_imports(code_module: cst.Module) -> list[str]:
    used: set[str] = set()
    imported: set[str] = set()

    class V(cst.CSTVisitor):
        def visit_Attribute(self, n: cst.Attribute) -> None:
            d = dotted(n)
            if d:
                used.add(d.split(".")[0])

        def visit_Import(self, n: cst.Import) -> bool:
            for a in n.names:
                imported.add(a.asname.name.value if a.asname else dotted(a.name).split(".")[0])
            return False

        def visit_ImportFrom(self, n: cst.ImportFrom) -> bool:
            if not isinstance(n.names, cst.ImportStar):
                for a in n.names:
                    imported.add(a.asname.name.value if a.asname else a.name.value)
            return False

    code_module.visit(V())
    out = []
    for name, stmt in (("itertools", "import itertools"), ("jax", "import jax"), ("jnp", "import jax.numpy as jnp"), ("jmod", "import jmod")):
        if name in used and name not in imported:
            out.append(stmt)
    return out


_COMMENT = re.compile(r"#\s*jmod\.port:")


def transform(source: str) -> tuple[str, dict[str, int], int, list[tuple[int, str]]]:
    """Port ``source``: (new source, lines rewritten per kind, lines left, [(line, why)])."""
    module = cst.parse_module(source)
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    porter = Porter(wrapper.module)
    new = wrapper.visit(porter)
    post = _PostPass()
    new = new.visit(post)
    # imports: drop `import torch` when nothing names torch any more, add what the rewrites use
    still_torch = _torch_used(new)
    body = list(new.body)
    first_import = None
    removed_leading = None
    for i, stmt in enumerate(body):
        if isinstance(stmt, cst.SimpleStatementLine) and any(isinstance(s, (cst.Import, cst.ImportFrom)) for s in stmt.body):
            s = stmt.body[0]
            mod = dotted(s.names[0].name) if isinstance(s, cst.Import) else (dotted(s.module) if s.module else "")
            if mod and mod.split(".")[0] in ("torch", "jmod", "jax"):
                if first_import is None:
                    first_import = i
                if isinstance(s, cst.Import) and mod == "torch" and not still_torch:
                    if removed_leading is None:
                        removed_leading = stmt.leading_lines
                    body[i] = None
    body = [b for b in body if b is not None]
    new = new.with_changes(body=body)
    needed = _needed_imports(new)
    if needed:
        stmts = [cst.parse_statement(s + "\n") for s in needed]
        if first_import is not None and first_import < len(body) and removed_leading is not None:
            stmts[0] = stmts[0].with_changes(leading_lines=removed_leading)
        if first_import is None:
            first_import = 0
            for i, stmt in enumerate(body):
                if isinstance(stmt, cst.SimpleStatementLine) and isinstance(stmt.body[0], (cst.Import, cst.ImportFrom)):
                    first_import = i
                    break
        first_import = min(first_import, len(body))
        body = body[:first_import] + stmts + body[first_import:]
        new = new.with_changes(body=body)
    code = new.code
    per_kind = {k: len({ln for ln in v if ln > 0}) for k, v in porter.rewrites.items()}
    if porter.dropped_device:
        per_kind["device"] = per_kind.get("device", 0) + porter.dropped_device
    left = []
    for n, line in enumerate(code.splitlines(), 1):
        mt = _COMMENT.search(line)
        if mt:
            left.append((n, line[mt.end():].strip()))
    return code, dict(sorted(per_kind.items())), len(left), left


def _torch_used(module: cst.Module) -> bool:
    used = False

    class V(cst.CSTVisitor):
        def visit_Import(self, n) -> bool:
            return False

        def visit_ImportFrom(self, n) -> bool:
            return False

        def visit_Name(self, n: cst.Name) -> None:
            nonlocal used
            if n.value == "torch":
                used = True

    module.visit(V())
    return used
