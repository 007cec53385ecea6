"""Explicit SIMD vectors for Numba kernels: a Numba type held in one LLVM vector register, and the four
operations the implicit-GEMM kernels need (zero, load, fused multiply-add with a broadcast scalar, store of a
lane range), plus an unchecked scalar load and a sum of lanes.

Why not leave vectorisation to LLVM?  Its loop vectoriser vectorises the innermost loop, and in a convolution
that is the reduction (channels and taps) or a short row; measured on the benchmark machine, every loop order
written in plain Numba ran 5-50x slower than the BLAS.  A register-blocked micro-kernel (8 output channels x 2
vectors of positions held in 16 vector registers, one broadcast weight per FMA) needs the vectors to be
explicit.

The width follows the CPU Numba compiles for: 64 bytes with AVX-512, 32 with AVX/AVX2, else 16.  The kernels
are correct at any width (LLVM splits wider vectors); :data:`VECTOR_BYTES` tells the algorithm selection
whether they will be fast.
"""
from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils, config
from numba.extending import intrinsic, models, register_model


def _vector_bytes() -> int:
    import llvmlite.binding as llvm
    if config.CPU_NAME and config.CPU_NAME != "host":      # NUMBA_CPU_NAME: code for another (generic) CPU
        features = config.CPU_FEATURES or ""
    else:
        features = llvm.get_host_cpu_features().flatten()
    if "+avx512f" in features:
        return 64
    if "+avx2" in features or "+avx," in features + ",":
        return 32
    return 16


#: bytes per vector register the kernels use
VECTOR_BYTES = _vector_bytes()


def lanes(itemsize: int) -> int:
    """Elements per vector for elements of ``itemsize`` bytes."""
    return VECTOR_BYTES // itemsize


class Vector(types.Type):
    """A vector of ``lanes`` floats of ``dtype`` (a Numba float type)."""

    def __init__(self, dtype, count):
        self.dtype = dtype
        self.count = count
        super().__init__(name=f"Vector({dtype}x{count})")


@register_model(Vector)
class _VectorModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, ir.VectorType(dmm.lookup(fe_type.dtype).get_value_type(), fe_type.count))


def _vector_of(array_type):
    if not isinstance(array_type, types.Array) or array_type.dtype not in (types.float32, types.float64):
        raise TypeError(f"SIMD vectors need a float32 or float64 array, got {array_type}")
    return Vector(array_type.dtype, lanes(array_type.dtype.bitwidth // 8))


def _splat(builder, value, vector_type):
    """``value`` in every lane of ``vector_type``."""
    count = vector_type.count
    lane0 = builder.insert_element(ir.Constant(vector_type, ir.Undefined), value, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(lane0, ir.Constant(vector_type, ir.Undefined),
                                  ir.Constant(ir.VectorType(ir.IntType(32), count), [0] * count))


def _pointer(context, builder, array_type, array, index):
    data = context.make_array(array_type)(context, builder, array).data
    return builder.gep(data, [index])          # not inbounds: masked stores may start before the array


@intrinsic
def vzero(typingctx, like):
    """A zero vector of ``like``'s element type."""
    vec = _vector_of(like)

    def codegen(context, builder, sig, args):
        return ir.Constant(context.get_value_type(vec), None)
    return vec(like), codegen


@intrinsic
def vload(typingctx, array, index):
    """``array[index : index + lanes]`` (unaligned, unchecked) as a vector."""
    vec = _vector_of(array)

    def codegen(context, builder, sig, args):
        ptr = _pointer(context, builder, sig.args[0], args[0], args[1])
        vty = context.get_value_type(vec)
        return builder.load(builder.bitcast(ptr, vty.as_pointer()), align=vec.dtype.bitwidth // 8)
    return vec(array, types.intp), codegen


@intrinsic
def at(typingctx, array, index):
    """``array[index]`` with no bounds or negative-index handling (Numba's wrap-around check costs four
    instructions per load, which in the kernels' inner loop was most of the work besides the FMAs)."""
    if not isinstance(array, types.Array):
        return None

    def codegen(context, builder, sig, args):
        return builder.load(_pointer(context, builder, sig.args[0], args[0], args[1]))
    return array.dtype(array, types.intp), codegen


@intrinsic
def vfma(typingctx, acc, v, s):
    """``acc + v * s`` lane by lane, fused (one rounding); ``s`` is a vector or a scalar (broadcast)."""
    if not isinstance(acc, Vector) or acc != v or isinstance(s, Vector) and s != acc:
        return None

    def codegen(context, builder, sig, args):
        vty = context.get_value_type(acc)
        if isinstance(sig.args[2], Vector):
            other = args[2]
        else:
            other = _splat(builder, context.cast(builder, args[2], sig.args[2], acc.dtype), vty)
        suffix = f"v{acc.count}f{acc.dtype.bitwidth}"
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vty, [vty, vty, vty]),
                                             f"llvm.fma.{suffix}")
        return builder.call(fma, [args[1], other, args[0]])
    return acc(acc, v, s), codegen


@intrinsic
def vsum(typingctx, v):
    """The sum of ``v``'s lanes (a scalar)."""
    if not isinstance(v, Vector):
        return None

    def codegen(context, builder, sig, args):
        total = ir.Constant(context.get_value_type(v.dtype), 0.0)
        for lane in range(v.count):
            total = builder.fadd(total, builder.extract_element(args[0], ir.Constant(ir.IntType(32), lane)))
        return total
    return v.dtype(v), codegen


@intrinsic
def vstore_lanes(typingctx, array, index, v, lo, hi):
    """Store lanes ``lo <= l < hi`` of ``v`` at ``array[index + l]`` (a masked store: other lanes' memory is
    not touched, so ``index`` may lie before the array when ``lo > 0``)."""
    if not isinstance(v, Vector):
        return None

    def codegen(context, builder, sig, args):
        vty = context.get_value_type(v)
        ptr = builder.bitcast(_pointer(context, builder, sig.args[0], args[0], args[1]), vty.as_pointer())
        ivec = ir.VectorType(ir.IntType(64), v.count)
        iota = ir.Constant(ivec, list(range(v.count)))

        def lane_bound(i):
            return _splat(builder, context.cast(builder, args[i], sig.args[i], types.int64), ivec)
        mask = builder.and_(builder.icmp_signed(">=", iota, lane_bound(3)),
                            builder.icmp_signed("<", iota, lane_bound(4)))
        suffix = f"v{v.count}f{v.dtype.bitwidth}.p0"
        store = cgutils.get_or_insert_function(
            builder.module,
            ir.FunctionType(ir.VoidType(), [vty, vty.as_pointer(), ir.IntType(32), ir.VectorType(ir.IntType(1),
                                                                                                   v.count)]),
            f"llvm.masked.store.{suffix}")
        builder.call(store, [args[2], ptr, ir.Constant(ir.IntType(32), v.dtype.bitwidth // 8), mask])
        return context.get_dummy_value()
    return types.none(array, types.intp, v, types.intp, types.intp), codegen
