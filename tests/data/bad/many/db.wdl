<?xml version="1.0"?>
<wrapper name="Db">
  <method name="start" key="tune_no_such_module_for_tests.Db" method="start"/>
  <method name="stop" key="examples.xen_attitune.vm.XenVM" method="nope"/>
</wrapper>
