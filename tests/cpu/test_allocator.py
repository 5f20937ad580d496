import subprocess
import sys

from imdb_cli.cpu.allocator import keep_freed_memory

CHECK = "from imdb_cli.cpu.allocator import keep_freed_memory; print(keep_freed_memory())"


def test_glibc_keeps_freed_memory_unless_the_user_chose():
    assert keep_freed_memory() is (sys.platform == "linux")
    chosen = subprocess.run(
        [sys.executable, "-c", CHECK], env={"MALLOC_MMAP_THRESHOLD_": "65536"}, capture_output=True, text=True
    )
    assert chosen.stdout.strip() == "False"
