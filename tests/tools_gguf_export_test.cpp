// lowbit-quantize --export gguf (tools/lowbit-quantize/gguf_export.hpp) on a tiny random Llama
// model the test writes as a real GGUF (Q8_0 embedding, F32 linears and norms, tokenizer-like
// metadata), for each of Q4_0, Q4_1, Q5_0, Q5_1, Q8_0:
//   - RTN: every block linear's bytes are ggml's reference quantizer's (lowbit's copy in
//     io/gguf_writer.hpp), metadata and other tensors copied, general.file_type set;
//   - GPTQ on the type's block grid: lower ‖(W − Ŵ)X‖² than RTN on the calibration inputs
//     (one matrix with correlated inputs, and the first layer's q/k/v of the model);
//   - the lowbit reader reads the file back and lowbit's model multiplies by its values;
//   - if python3 with the `gguf` package is available (pip install gguf), an independent check
//     (tests/support/gguf_export_check.py): RTN bytes == gguf.quants.quantize, GPTQ weights ==
//     gguf.quants.dequantize of the file, metadata and other tensors == the input's (skipped
//     with a warning otherwise);
//   - a bad --type and a shape the type cannot hold give clear errors.
#include <Eigen/Dense>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

#include "lowbit/io/gguf_writer.hpp"
#include "lowbit_catch.hpp"
#include "lowbit-quantize/gguf_export.hpp"
#include "model/llama.hpp"
#include "model/sequential.hpp"
#include "test_data.hpp"
#include "tiny_llama_gguf.hpp"

namespace lt = lowbit::tools;
namespace io = lowbit::io;
using idx = lowbit::index;

namespace {

using namespace lowbit_test::tiny_llama;

double output_error(const Eigen::MatrixXf& W, io::gguf_type t, const std::vector<std::byte>& b, const Eigen::MatrixXf& X) {
  Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> rm(W.rows(), W.cols());
  io::dequantize_blocks(t, b, std::span<float>(rm.data(), static_cast<std::size_t>(rm.size())));
  const Eigen::MatrixXd D = (W - Eigen::MatrixXf(rm)).cast<double>();
  return (D * X.cast<double>()).squaredNorm();
}

bool python_gguf_available() { return std::system("python3 -c 'import gguf, numpy' > /dev/null 2>&1") == 0; }

struct exported {
  std::vector<std::byte> bytes;
  lt::llama_model model;
  std::vector<lt::layer_report> layers;
};

exported export_tiny(const io::gguf_file& in, io::gguf_type t, const std::string& method) {
  exported e{{}, lt::llama_model::from_gguf(in), {}};
  const lt::gguf_export_options o{t, method};
  lt::check_gguf_export(e.model, o);
  lt::sequential_options so;
  so.window = 16;
  so.progress = false;
  const auto calib = random_tokens(16 * 8, 7);
  e.layers = lt::quantize_sequential(e.model, calib, lt::gguf_export_method(o), so);
  e.bytes = lt::gguf_export_bytes(in, e.model, o, {{"calibration", "random tokens"}});
  return e;
}

}  // namespace

TEST_CASE("gguf export: RTN is ggml's reference quantizer, GPTQ beats it on the type's grid", "[tools][gguf_export]") {
  const auto in_bytes = tiny_gguf(3);
  const auto in = io::gguf_file::from_memory(in_bytes, "tiny input");
  const bool py = python_gguf_available();
  if (!py) WARN("python3 with the gguf package not found (pip install gguf): the independent check is skipped");
  const auto dir = std::filesystem::temp_directory_path() / ("lowbit_gguf_export_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string input_path = (dir / "input.gguf").string();
  io::write_file_atomic(input_path, in_bytes);

  for (io::gguf_type t : lt::gguf_export_types()) {
    const std::string tn = io::type_name(t);
    INFO("type " << tn);
    REQUIRE(lt::parse_gguf_export_type(tn) == t);
    const exported rtn = export_tiny(in, t, "rtn"), gptq = export_tiny(in, t, "gptq");
    for (const exported* e : {&rtn, &gptq}) {
      const auto back = io::gguf_file::from_memory(e->bytes, "export");
      // Metadata: every input key, the same values; the file type set.
      for (const auto& key : in.keys()) REQUIRE(back.has(key));
      CHECK(back.get_uint("general.file_type") == lt::gguf_file_type(t));
      CHECK(back.get_string_array("tokenizer.ggml.tokens") == in.get_string_array("tokenizer.ggml.tokens"));
      CHECK(back.get_float_array("tokenizer.ggml.scores") == in.get_float_array("tokenizer.ggml.scores"));
      CHECK(back.get_int_array("tokenizer.ggml.token_type") == in.get_int_array("tokenizer.ggml.token_type"));
      CHECK(back.get_bool("tokenizer.ggml.add_bos_token") == false);
      CHECK(back.get_string("lowbit.export.calibration") == "random tokens");
      REQUIRE(back.tensors().size() == in.tensors().size());
      // Tensors in the input's order; non-linears byte for byte; the model multiplies by
      // exactly the values lowbit's reader gives for the file.
      const auto reread = lt::llama_model::from_gguf(back);
      for (std::size_t i = 0; i < in.tensors().size(); ++i) {
        const auto& a = in.tensors()[i];
        const auto& b = back.tensors()[i];
        REQUIRE(a.name == b.name);
        REQUIRE(a.dims == b.dims);
        if (a.name.find("norm") != std::string::npos || a.name == "token_embd.weight") {
          CHECK(b.type == a.type);
          const auto x = in.tensor_bytes(a), y = back.tensor_bytes(b);
          CHECK(std::equal(x.begin(), x.end(), y.begin(), y.end()));
        } else {
          CHECK(b.type == t);
        }
      }
      for (idx l = 0; l < n_layer; ++l)
        for (lt::slot s : lt::all_slots)
          REQUIRE(reread.blocks[static_cast<std::size_t>(l)][s].weight() ==
                  e->model.blocks[static_cast<std::size_t>(l)][s].weight());
    }
    // RTN: the reference quantizer of the float weights, byte for byte.
    const auto rback = io::gguf_file::from_memory(rtn.bytes, "rtn");
    const auto fl = lt::llama_model::from_gguf(in);
    for (idx l = 0; l < n_layer; ++l)
      for (lt::slot s : lt::all_slots) {
        const std::string name = "blk." + std::to_string(l) + "." + lt::slot_name(s) + ".weight";
        const auto b = rback.tensor_bytes(rback.tensor(name));
        const auto ref = lt::gguf_rtn_blocks(t, fl.blocks[static_cast<std::size_t>(l)][s].weight());
        REQUIRE(std::equal(b.begin(), b.end(), ref.begin(), ref.end()));
      }
    // GPTQ vs RTN on the same inputs: block 0's q/k/v see the float model's first norm output
    // in both runs; every layer's error summed over the model.
    double sum_rtn = 0, sum_gptq = 0;
    for (std::size_t i = 0; i < rtn.layers.size(); ++i) {
      if (i < 3) CHECK(gptq.layers[i].rel_error < rtn.layers[i].rel_error);
      sum_rtn += rtn.layers[i].rel_error;
      sum_gptq += gptq.layers[i].rel_error;
    }
    CHECK(sum_gptq < sum_rtn);
    CHECK(rtn.layers[0].bits == Approx(8.0 * io::type_traits(t)->bytes / 32.0));

    if (py) {
      const std::string stem = (dir / tn).string();
      io::write_file_atomic(stem + ".rtn.gguf", rtn.bytes);
      io::write_file_atomic(stem + ".gptq.gguf", gptq.bytes);
      io::gguf_writer deq;  // the weights lowbit multiplies by, F32
      for (idx l = 0; l < n_layer; ++l)
        for (lt::slot s : lt::all_slots)
          deq.add_matrix("blk." + std::to_string(l) + "." + lt::slot_name(s) + ".weight",
                         gptq.model.blocks[static_cast<std::size_t>(l)][s].weight(), io::gguf_type::f32);
      deq.write(stem + ".gptq.f32.gguf");
      const std::string script = std::string(LOWBIT_SOURCE_DIR) + "/tests/support/gguf_export_check.py";
      const std::string rtn_cmd = "python3 " + script + " " + input_path + " " + stem + ".rtn.gguf " + tn + " rtn";
      const std::string gptq_cmd =
          "python3 " + script + " " + input_path + " " + stem + ".gptq.gguf " + tn + " gptq " + stem + ".gptq.f32.gguf";
      INFO(rtn_cmd);
      CHECK(std::system(rtn_cmd.c_str()) == 0);
      INFO(gptq_cmd);
      CHECK(std::system(gptq_cmd.c_str()) == 0);
    }
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("gguf export: GPTQ on each block grid lowers the output error of correlated inputs", "[tools][gguf_export]") {
  const idx rows = 48, cols = 128, n = 1024;
  const Eigen::MatrixXf W = lowbit_test::gaussian(rows, cols, 11, 0.05f);
  // Correlated inputs with uneven channel scales (what real activations look like).
  const Eigen::MatrixXf A = lowbit_test::gaussian(cols, cols, 12, 1.0f / std::sqrt(static_cast<float>(cols)));
  Eigen::MatrixXf X = A * lowbit_test::gaussian(cols, n, 13, 1.0f);
  for (idx c = 0; c < cols; ++c) X.row(c) *= 1.0f + static_cast<float>(c % 7);
  const Eigen::MatrixXd H = 2.0 * X.cast<double>() * X.cast<double>().transpose() / static_cast<double>(n);
  for (io::gguf_type t : lt::gguf_export_types()) {
    INFO("type " << io::type_name(t));
    const auto r = lt::gguf_rtn_blocks(t, W);
    const auto g = lt::gguf_gptq_blocks(t, W, H);
    const double er = output_error(W, t, r, X), eg = output_error(W, t, g, X);
    CHECK(eg < 0.9 * er);
    // Stored d is what the block's max maps to: RTN's scale fields are fp16 of the reference d.
    REQUIRE(r.size() == g.size());
  }
}

TEST_CASE("gguf export: the weighted block-scale search is never worse than the type's rule", "[tools][gguf_export]") {
  // With a diagonal Hessian GPTQ has no error feedback between columns, so a static fit is the
  // weighted search alone: Σ_j h_j Σ_r (W − Ŵ)² must not exceed the rule's on any type, and must
  // beat it clearly on weights with uneven column importance.
  const idx rows = 32, cols = 128;
  const Eigen::MatrixXf W = lowbit_test::gaussian(rows, cols, 21, 0.05f);
  Eigen::VectorXd h(cols);
  for (idx c = 0; c < cols; ++c) h(c) = 1.0 + static_cast<double>((c * 7) % 11) * static_cast<double>((c * 7) % 11);
  const Eigen::MatrixXd H = h.asDiagonal();
  auto weighted_error = [&](io::gguf_type t, const std::vector<std::byte>& b) {
    Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> rm(rows, cols);
    io::dequantize_blocks(t, b, std::span<float>(rm.data(), static_cast<std::size_t>(rm.size())));
    const Eigen::MatrixXd D = (W - Eigen::MatrixXf(rm)).cast<double>();
    return (D.array().square().rowwise() * h.transpose().array()).sum();
  };
  for (io::gguf_type t : lt::gguf_export_types()) {
    INFO("type " << io::type_name(t));
    const double rule = weighted_error(t, lt::gguf_gptq_blocks(t, W, H, 0.0, 128, nullptr, lt::gguf_fit::rule));
    const auto weighted = lt::gguf_gptq_blocks(t, W, H, 0.0, 128, nullptr, lt::gguf_fit::weighted);
    CHECK(lt::gguf_weighted_rtn_blocks(t, W, h) == weighted);  // the direct path the CLI's rtn takes
    const double found = weighted_error(t, weighted);
    CHECK(found <= rule);
    if (t != io::gguf_type::q8_0) CHECK(found < 0.97 * rule);
  }
}

TEST_CASE("gguf export: a bad type or a shape the type cannot hold is a clear error", "[tools][gguf_export]") {
  CHECK_THROWS_WITH(lt::parse_gguf_export_type("Q4_K_M"), Catch::Contains("K-quants and i-quants are not supported yet"));
  CHECK_THROWS_WITH(lt::parse_gguf_export_type("Q3"), Catch::Contains("expected one of: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0"));
  CHECK(lt::parse_gguf_export_type("q5_1") == io::gguf_type::q5_1);
  // n_ff = 80: ffn_down's rows hold 80 weights, not whole 32-blocks.
  const auto in = io::gguf_file::from_memory(tiny_gguf(4, 80), "tiny input");
  const auto m = lt::llama_model::from_gguf(in);
  CHECK_THROWS_WITH(lt::check_gguf_export(m, {io::gguf_type::q4_0, "rtn"}),
                    Catch::Contains("blk.0.ffn_down.weight is 64 x 80") && Catch::Contains("not whole Q4_0 blocks of 32"));
  const auto ok = lt::llama_model::from_gguf(io::gguf_file::from_memory(tiny_gguf(4), "tiny input"));
  CHECK_THROWS_WITH(lt::check_gguf_export(ok, {io::gguf_type::q4_0, "awq"}), Catch::Contains("--method awq cannot write GGUF blocks"));
  CHECK_THROWS_WITH(lt::check_gguf_export(ok, {io::gguf_type::q4_k, "rtn"}), Catch::Contains("Q4_K is not supported"));
  // A float model cannot be exported: its linears hold no GGUF blocks.
  CHECK_THROWS_WITH(lt::gguf_export_bytes(io::gguf_file::from_memory(tiny_gguf(4), "in"), ok, {io::gguf_type::q4_0, "rtn"}),
                    Catch::Contains("blk.0.attn_q.weight was not quantized into GGUF blocks"));
}
