"""Test helpers shared by more than one test folder (imported as ``support.<module>``; the
suite's root conftest puts ``test/`` on ``sys.path``).

* :mod:`support.ros_harness` - a fresh rclpy context with a background executor (the ``ros`` fixture);
* :mod:`support.export_testlib` - TinyPolicy and real exported tiny cards (export, runtime, contract);
* :mod:`support.policy_card` - the NaN-gate policy card and ROS message builders (nodes, policy);
* :mod:`support.urdf_samples` - URDFs of real robots (control, nodes).
"""
