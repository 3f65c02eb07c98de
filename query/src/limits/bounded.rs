//! Scalar functions wrapped with a bound on the size of the values they build (see
//! [`Bounded`]); part of the query limits.

use super::limited;
use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::{cast, max};
use datafusion::arrow::datatypes::{DataType, FieldRef, Int64Type};
use datafusion::common::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};
use std::sync::Arc;

/// The functions whose output can be far larger than their input, checked before they run.
/// (The list functions that could, such as `array_repeat`, are not registered.)
const AMPLIFIERS: [&str; 4] = ["repeat", "lpad", "rpad", "replace"];

/// A scalar function with a bound on the size of the values it builds: the functions whose
/// output can be far larger than their input (`repeat`, `lpad`, `rpad`, `replace`) are
/// checked before they run; every function's string or binary output after it ran, per value.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct Bounded {
    pub(super) inner: Arc<ScalarUDF>,
    pub(super) max_value_bytes: usize,
}

/// Largest value of an integer argument (0 when none or not an integer).
fn max_int(arg: &ArrayRef) -> i64 {
    cast(arg, &DataType::Int64)
        .ok()
        .and_then(|a| max(a.as_primitive::<Int64Type>()))
        .unwrap_or(0)
}

/// Longest string or binary value of an argument, in bytes (0 when not a string).
fn max_len(arg: &ArrayRef) -> usize {
    match arg.data_type() {
        DataType::Utf8 => arg.as_string::<i32>().iter().flatten().map(str::len).max(),
        DataType::LargeUtf8 => arg.as_string::<i64>().iter().flatten().map(str::len).max(),
        DataType::Utf8View => arg.as_string_view().iter().flatten().map(str::len).max(),
        DataType::Binary => arg
            .as_binary::<i32>()
            .iter()
            .flatten()
            .map(<[u8]>::len)
            .max(),
        DataType::LargeBinary => arg
            .as_binary::<i64>()
            .iter()
            .flatten()
            .map(<[u8]>::len)
            .max(),
        _ => None,
    }
    .unwrap_or(0)
}

impl Bounded {
    fn too_large(&self, bytes: u128) -> DataFusionError {
        limited("value_too_large");
        DataFusionError::Execution(format!(
            "{}() would build a value of {bytes} bytes; at most {} bytes are allowed \
             (--query-max-value-bytes)",
            self.inner.name(),
            self.max_value_bytes
        ))
    }

    /// The largest value the function can build from `args`, for the functions that amplify.
    fn bound(&self, args: &[ArrayRef]) -> Option<u128> {
        let arg = |i: usize| args.get(i);
        let len = |i: usize| arg(i).map_or(0, |a| max_len(a) as u128);
        let int = |i: usize| arg(i).map_or(0, |a| max_int(a).max(0) as u128);
        match self.inner.name() {
            "repeat" => Some(len(0) * int(1)),
            // Characters requested, at most four bytes each.
            "lpad" | "rpad" => Some(int(1) * 4),
            // Every byte of the string replaced by the longest replacement.
            "replace" => Some(len(0) * len(2).max(1)),
            _ => None,
        }
    }
}

impl ScalarUDFImpl for Bounded {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs<'_>) -> DfResult<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let limit = self.max_value_bytes as u128;
        if AMPLIFIERS.contains(&self.inner.name()) {
            let arrays: Vec<ArrayRef> = args
                .args
                .iter()
                .map(|a| a.to_array(1))
                .collect::<DfResult<_>>()?;
            if let Some(bytes) = self.bound(&arrays).filter(|b| *b > limit) {
                return Err(self.too_large(bytes));
            }
        }
        let out = self.inner.invoke_with_args(args)?;
        let longest = match &out {
            ColumnarValue::Array(a) => max_len(a),
            ColumnarValue::Scalar(s) => max_len(&s.to_array()?),
        };
        if longest as u128 > limit {
            return Err(self.too_large(longest as u128));
        }
        Ok(out)
    }
}
